package main

// Tests of libfuse's -o words (fsname=, subtype=, kernel_cache, uid=,
// gid=, umask=…): what each sets, and, through the built binary, what a
// user sees: the mount table, the presented owners and modes as root and
// as an ordinary user, and refusals that leave nothing mounted.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
)

// TestApplyFuseWords checks what libfuse's words set, and that a bad one
// is reported alone.
func TestApplyFuseWords(t *testing.T) {
	u := func(v uint32) *uint32 { return &v }
	for _, c := range []struct {
		list    string
		opts    sievefs.Options
		present presentation
	}{
		{"kernel_cache", sievefs.Options{Cache: sievefs.CacheAlways}, presentation{}},
		{"kernel_cache,auto_cache", sievefs.Options{Cache: sievefs.CacheAuto}, presentation{}},
		{"cache=never,kernel_cache", sievefs.Options{Cache: sievefs.CacheAlways}, presentation{}},
		{"fsname=my view,subtype=sieve2", sievefs.Options{FsName: "my view", Subtype: "sieve2"}, presentation{}},
		{"uid=1000,gid=100,umask=027", sievefs.Options{}, presentation{uid: u(1000), gid: u(100), mode: u(0o750)}},
		{"umask=0", sievefs.Options{}, presentation{mode: u(0o777)}},
		{"uid=root,gid=root", sievefs.Options{}, presentation{uid: u(0), gid: u(0)}},
		{"hard_remove,use_ino,readdir_ino,intr,nonempty,async_read,big_writes", sievefs.Options{}, presentation{}},
	} {
		var cfg mountConfig
		f := newMountFlags(&cfg, io.Discard)
		if err := applyMountOptions(f, &cfg, c.list); err != nil {
			t.Errorf("%q: %v", c.list, err)
			continue
		}
		got := sievefs.Options{Cache: cfg.opts.Cache, FsName: cfg.opts.FsName, Subtype: cfg.opts.Subtype}
		if !reflect.DeepEqual(got, c.opts) || fmt.Sprint(derefs(cfg.present)) != fmt.Sprint(derefs(c.present)) {
			t.Errorf("%q: options %+v, presentation %v; want %+v, %v", c.list, got, derefs(cfg.present), c.opts, derefs(c.present))
		}
		if rules := cfg.present.rules(); (rules != nil) != (c.present != presentation{}) {
			t.Errorf("%q: rules %v", c.list, rules)
		}
	}
	for _, c := range []struct{ list, want string }{
		{"umask=999", `mount option "umask=999": want an octal mask`},
		{"umask=-1", `mount option "umask=-1": want an octal mask`},
		{"uid=no-such-user-here", `mount option "uid=no-such-user-here": user: unknown user`},
		{"gid=no-such-group-here", `mount option "gid=no-such-group-here": group: unknown group`},
		{"uid=4294967296", `mount option "uid=4294967296": `},
		{"subtype=", `mount option "subtype" needs a value (subtype=…)`},
		{"fsname", `mount option "fsname" needs a value (fsname=…)`},
		{"kernel_cache=1", `mount option "kernel_cache" takes no value`},
		{"max_backing=lots", `mount option "max_backing=lots": parse error`},
	} {
		var cfg mountConfig
		f := newMountFlags(&cfg, io.Discard)
		err := applyMountOptions(f, &cfg, "rw,nosuid,"+c.list)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "nosuid") {
			t.Errorf("%q: %v; want %q…", c.list, err, c.want)
		}
	}
	for word, reason := range refusedWords {
		var cfg mountConfig
		f := newMountFlags(&cfg, io.Discard)
		err := applyMountOptions(f, &cfg, "rw,"+word+"=1")
		if want := fmt.Sprintf("mount option %q refused: %s", word, reason); err == nil || err.Error() != want || reason == "" {
			t.Errorf("%s: %v; want %q", word, err, want)
		}
	}
}

// derefs returns the values of p's fields, "-" for those not set.
func derefs(p presentation) []string {
	var out []string
	for _, v := range []*uint32{p.uid, p.gid, p.mode} {
		if v == nil {
			out = append(out, "-")
		} else {
			out = append(out, fmt.Sprintf("%#o", *v))
		}
	}
	return out
}

// TestMountWordsDocumented checks that docs/usage.md (and so the manual
// page) names every -o word the command knows.
func TestMountWordsDocumented(t *testing.T) {
	data, err := os.ReadFile("../../docs/usage.md")
	if err != nil {
		t.Fatal(err)
	}
	var words []string
	for w := range mountWords {
		words = append(words, w)
	}
	for w := range valueWords {
		words = append(words, w)
	}
	for w := range refusedWords {
		words = append(words, w)
	}
	for w := range ignoredWords {
		words = append(words, w)
	}
	for _, w := range words {
		if !regexp.MustCompile("`" + regexp.QuoteMeta(w) + "(=[^`]*)?`").Match(data) {
			t.Errorf("docs/usage.md does not name -o %s", w)
		}
	}
}

// TestFsNameSubtype mounts with fsname=, subtype= and kernel_cache, and
// checks the mount table, the cache mode, and that status and umount find
// the view by its other type.
func TestFsNameSubtype(t *testing.T) {
	requireFuse(t)
	lower, mnt := viewDirs(t)
	startView(t, mnt, nil, "mount", "-o", "fsname=myview,subtype=sieve2,kernel_cache", lower, mnt)
	var found bool
	for _, m := range mounts() {
		if m.Point == mnt {
			found = true
			if m.FSType != "fuse.sieve2" || m.Source != "myview" {
				t.Errorf("mountinfo: type %q, source %q; want fuse.sieve2, myview", m.FSType, m.Source)
			}
		}
	}
	if !found {
		t.Fatalf("nothing mounted on %s", mnt)
	}
	if data, err := os.ReadFile(filepath.Join(mnt, "data.txt")); err != nil || string(data) != "lower data" {
		t.Errorf("read through the view: %q, %v", data, err)
	}
	entries, r := statusJSON(t)
	e := entryFor(entries, mnt)
	if e == nil || e.State != "running" || e.Status == nil {
		t.Fatalf("status does not show the view as running: %+v; stderr:\n%s", e, r.stderr)
	}
	if e.Cache.Mode != sievefs.CacheAlways {
		t.Errorf("kernel_cache: cache mode %q, want always", e.Cache.Mode)
	}
	if r := runBinary(t, "umount", mnt); r.code != exitOK || mountedOn(mnt) {
		t.Errorf("umount: exit %d, still mounted %v; stderr:\n%s", r.code, mountedOn(mnt), r.stderr)
	}
}

// TestPresentation mounts with uid=, gid= and umask= and allow_other over
// a lower tree only root may read, and checks what stat shows root and an
// ordinary user, what that user may then do, and that chmod through the
// view is refused.
func TestPresentation(t *testing.T) {
	requireFuse(t)
	base := sharedTempDir(t)
	lower, mnt := filepath.Join(base, "lower"), filepath.Join(base, "mnt")
	for _, d := range []string{lower, filepath.Join(lower, "dir"), mnt} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(lower, "dir", "f.txt")
	if err := os.WriteFile(file, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("dir/f.txt", filepath.Join(lower, "link")); err != nil {
		t.Fatal(err)
	}
	startView(t, mnt, nil, "mount", "-o", "allow_other,uid=1000,gid=1000,umask=027", lower, mnt)

	stat := func(cred *syscall.Credential, paths ...string) string {
		t.Helper()
		r := runAs(t, cred, "/usr/bin/stat", append([]string{"-c", "%n %u %g %a"}, paths...)...)
		if r.code != 0 {
			t.Fatalf("stat as %v: exit %d; stderr:\n%s", cred, r.code, r.stderr)
		}
		return r.stdout
	}
	paths := []string{mnt, filepath.Join(mnt, "dir"), filepath.Join(mnt, "dir", "f.txt")}
	want := fmt.Sprintf("%s 1000 1000 750\n%s/dir 1000 1000 750\n%s/dir/f.txt 1000 1000 750\n", mnt, mnt, mnt)
	user := &syscall.Credential{Uid: 1000, Gid: 1000}
	for _, cred := range []*syscall.Credential{nil, user} {
		if got := stat(cred, paths...); got != want {
			t.Errorf("stat as %v:\n%s\nwant\n%s", cred, got, want)
		}
	}
	if got := stat(nil, filepath.Join(mnt, "link")); !strings.HasSuffix(got, " 1000 1000 777\n") {
		t.Errorf("symlink: %s; want its own mode 777, owner 1000", got)
	}
	// The presented owner may read what the lower tree lets only root read;
	// someone outside the presented group may not even look.
	if r := runAs(t, user, "/bin/cat", filepath.Join(mnt, "dir", "f.txt")); r.code != 0 || r.stdout != "secret" {
		t.Errorf("cat as uid 1000: exit %d, %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	other := &syscall.Credential{Uid: 1001, Gid: 1001}
	if r := runAs(t, other, "/bin/cat", filepath.Join(mnt, "dir", "f.txt")); r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("cat as uid 1001: exit %d, %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if err := os.Chmod(filepath.Join(mnt, "dir", "f.txt"), 0o644); !errors.Is(err, syscall.EPERM) {
		t.Errorf("chmod through the view: %v, want EPERM", err)
	}
	if err := os.Chmod(mnt, 0o777); !errors.Is(err, syscall.EPERM) {
		t.Errorf("chmod of the view's root: %v, want EPERM", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil || st.Mode&0o7777 != 0o600 || st.Uid != 0 {
		t.Errorf("lower file: mode %o uid %d (%v); want it untouched", st.Mode&0o7777, st.Uid, err)
	}
	entries, _ := statusJSON(t, mnt)
	if e := entryFor(entries, mnt); e == nil || e.Status == nil || !slices.ContainsFunc(e.Filters, func(r filter.RuleStats) bool { return r.Rule == "options:remap" }) {
		t.Errorf("status does not list the options:remap rule: %+v", e)
	}
}

// TestFuseWordsRefused mounts with libfuse words sievefs refuses, as the
// command and as mount(8) runs the helper: each exits 2 with nothing
// mounted, naming only the word at fault and why.
func TestFuseWordsRefused(t *testing.T) {
	requireFuse(t)
	prefix := t.TempDir()
	if r := runBinary(t, "install-helper", "--prefix", prefix, "--mandir", ""); r.code != exitOK {
		t.Fatalf("install-helper: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	helper := filepath.Join(prefix, helperName)
	lower, mnt := viewDirs(t)
	t.Cleanup(func() { cleanupDaemonOf(t, mnt) })
	for _, word := range []string{"direct_io", "max_read=4096", "entry_timeout=1", "allow_root", "auto_unmount", "noforget"} {
		name, _, _ := strings.Cut(word, "=")
		want := fmt.Sprintf("sievefs mount: mount option %q refused: %s\nRun 'sievefs mount --help' for usage.\n", name, refusedWords[name])
		for _, r := range []result{
			runBinary(t, "mount", "-o", "allow_other,"+word, lower, mnt),
			// As mount(8) runs it for "mount -t fuse.sievefs -o allow_other,WORD".
			runAs(t, nil, helper, lower, mnt, "-o", "rw,nosuid,nodev,relatime,allow_other,"+word),
		} {
			if r.code != exitUsage || r.stderr != want {
				t.Errorf("-o %s: exit %d; stderr:\n%s\nwant exit %d and\n%s", word, r.code, r.stderr, exitUsage, want)
			}
			if mountedOn(mnt) {
				detachAll(t, mnt)
				t.Fatalf("-o %s: mounted", word)
			}
		}
	}
}

// TestPresentationWithPolicy mounts with a policy and uid=, umask=: the
// policy's own remap wins on its paths, the options' presentation holds
// everywhere else, and a SIGHUP reload keeps it.
func TestPresentationWithPolicy(t *testing.T) {
	requireFuse(t)
	base, lower, mnt := policyDirs(t)
	pf := writePolicy(t, base, "policy.yaml", "rules:\n  - hide: [b.txt]\n  - remap: {paths: [a.txt], uid: 2000}\n")
	d := startView(t, mnt, nil, "mount", "--policy", pf, "-o", "uid=1000,umask=022", lower, mnt)
	owner := func(name string) (uid uint32, mode os.FileMode) {
		t.Helper()
		fi, err := os.Stat(filepath.Join(mnt, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Uid, fi.Mode().Perm()
	}
	check := func(name string, wantUID uint32) {
		t.Helper()
		if uid, mode := owner(name); uid != wantUID || mode != 0o755 {
			t.Errorf("%q: uid %d, mode %o; want %d, 755", name, uid, mode, wantUID)
		}
	}
	check("", 1000)
	check("a.txt", 2000)
	check("c.txt", 1000)
	if got := listing(t, mnt); !slices.Equal(got, []string{"a.txt", "c.txt", "data.txt"}) {
		t.Errorf("listing %v: b.txt should be hidden", got)
	}

	writePolicy(t, base, "policy.yaml", "rules:\n  - hide: [c.txt]\n")
	d.Cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "c.txt hidden and b.txt shown after SIGHUP", func() bool {
		return slices.Equal(listing(t, mnt), []string{"a.txt", "b.txt", "data.txt"})
	})
	check("", 1000)
	check("a.txt", 1000)
	check("b.txt", 1000)
	if e := statusOf(t, mnt); !slices.ContainsFunc(e.Filters, func(r filter.RuleStats) bool { return r.Rule == "options:remap" }) {
		t.Errorf("after the reload, status does not list options:remap: %+v", e.Filters)
	}
}
