package main

// Tests of the -o words that set mount flags (noexec, nodev, suid, atime…),
// through `sievefs mount`, the mount.fuse.sievefs helper and an
// unprivileged user's mount through fusermount3: each is applied (and shows
// in /proc/self/mountinfo and takes effect) or refused with its reason.

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestApplyMountOptionWords checks what each mount(8) word sets, later words
// overriding earlier ones as in mount(8).
func TestApplyMountOptionWords(t *testing.T) {
	for _, c := range []struct {
		list string
		want sievefs.Options
	}{
		{"noexec,nodev,nosuid", sievefs.Options{NoExec: true}},
		{"noexec,exec", sievefs.Options{}},
		{"suid,dev", sievefs.Options{Suid: true, Dev: true}},
		{"suid,dev,nosuid,nodev", sievefs.Options{}},
		{"ro,rw", sievefs.Options{}},
		{"rw,ro", sievefs.Options{ReadOnly: true}},
		{"noatime", sievefs.Options{Atime: sievefs.AtimeNever}},
		{"relatime", sievefs.Options{Atime: sievefs.AtimeRelative}},
		{"strictatime", sievefs.Options{Atime: sievefs.AtimeStrict}},
		{"noatime,atime", sievefs.Options{}},
		{"strictatime,nostrictatime", sievefs.Options{}},
		{"nodiratime", sievefs.Options{NoDirAtime: true}},
		{"nodiratime,diratime", sievefs.Options{}},
		{"nosymfollow", sievefs.Options{NoSymFollow: true}},
		// fstab's user and users imply noexec,nosuid,nodev unless later
		// words say otherwise; owner and group imply nosuid,nodev.
		{"suid,user", sievefs.Options{NoExec: true}},
		{"users", sievefs.Options{NoExec: true}},
		{"user,exec", sievefs.Options{}},
		{"suid,dev,owner", sievefs.Options{}},
		{"dev,group", sievefs.Options{}},
		// user=NAME records who mounted; it implies nothing.
		{"user=alice", sievefs.Options{}},
		{"defaults,noexec,auto,noauto,nofail,_netdev,nouser,async,nolazytime,nomand,comment=x,x-systemd.automount",
			sievefs.Options{NoExec: true}},
	} {
		var cfg mountConfig
		f := newMountFlags(&cfg, io.Discard)
		if err := applyMountOptions(f, &cfg, c.list); err != nil {
			t.Errorf("%q: %v", c.list, err)
			continue
		}
		if got := mountFlagOptions(cfg.opts); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: options %+v, want %+v", c.list, got, c.want)
		}
	}
	for _, c := range []struct{ list, want string }{
		{"sync", `mount option "sync" refused: `},
		{"dirsync", `mount option "dirsync" refused: `},
		{"mand", `mount option "mand" refused: `},
		{"lazytime", `mount option "lazytime" refused: `},
		{"norelatime", `mount option "norelatime" refused: `},
		{"remount", `mount option "remount" refused: `},
		{"noexec=1", `mount option "noexec" takes no value`},
		{"bind", `unknown mount option "bind"`},
	} {
		var cfg mountConfig
		f := newMountFlags(&cfg, io.Discard)
		if err := applyMountOptions(f, &cfg, "rw,"+c.list); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v; want %q", c.list, err, c.want)
		}
	}
}

// mountFlagOptions returns the fields of o that the words of
// TestApplyMountOptionWords set, and zero for the rest.
func mountFlagOptions(o sievefs.Options) sievefs.Options {
	return sievefs.Options{ReadOnly: o.ReadOnly, NoExec: o.NoExec, Suid: o.Suid, Dev: o.Dev,
		Atime: o.Atime, NoDirAtime: o.NoDirAtime, NoSymFollow: o.NoSymFollow,
		AllowOther: o.AllowOther, DefaultPermissions: o.DefaultPermissions}
}

// scriptView adds an executable shell script s.sh, which prints "ran", to
// the lower directory of viewDirs.
func scriptView(t *testing.T) (lower, mnt string) {
	t.Helper()
	lower, mnt = viewDirs(t)
	if err := os.WriteFile(filepath.Join(lower, "s.sh"), []byte("#!/bin/sh\necho ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return lower, mnt
}

// checkExec runs mnt/s.sh and checks that it ran, or that execve failed
// with EACCES when noexec. The daemon is another process: exec from the
// test process cannot deadlock with it.
func checkExec(t *testing.T, mnt string, noexec bool) {
	t.Helper()
	path := filepath.Join(mnt, "s.sh")
	// No PATH lookup and no access(2) first: the error is execve's own.
	out, err := (&exec.Cmd{Path: path, Args: []string{path}}).Output()
	switch {
	case noexec && !errors.Is(err, syscall.EACCES):
		t.Errorf("script on a noexec view: %q, %v; want EACCES", out, err)
	case !noexec && (err != nil || string(out) != "ran\n"):
		t.Errorf("script on the view: %q, %v", out, err)
	}
}

// TestMountFlagOptions mounts with -o words and checks the mount's flags and
// whether a script on it runs.
func TestMountFlagOptions(t *testing.T) {
	requireFuse(t)
	for _, c := range []struct {
		name, opts   string
		want, absent []string
		noexec       bool
	}{
		{"Default", "rw", []string{"rw", "nosuid", "nodev", "relatime"}, []string{"noexec"}, false},
		{"NoexecNodev", "noexec,nodev", []string{"noexec", "nodev", "nosuid"}, nil, true},
		{"FstabUser", "user", []string{"noexec", "nodev", "nosuid"}, nil, true},
		{"SuidDevAtime", "suid,dev,noatime,nodiratime", []string{"noatime", "nodiratime"}, []string{"nosuid", "nodev", "noexec"}, false},
		{"ReadOnlyStrictatime", "ro,strictatime,nosymfollow", []string{"ro", "nosymfollow"}, []string{"relatime", "noatime"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			lower, mnt := scriptView(t)
			startView(t, mnt, nil, "mount", "-o", c.opts, lower, mnt)
			got := fusetest.MountFlags(t, mnt)
			for _, w := range c.want {
				if !slices.Contains(got, w) {
					t.Errorf("-o %s: mount flags %v lack %s", c.opts, got, w)
				}
			}
			for _, a := range c.absent {
				if slices.Contains(got, a) {
					t.Errorf("-o %s: mount flags %v have %s", c.opts, got, a)
				}
			}
			checkExec(t, mnt, c.noexec)
		})
	}
}

// TestMountOptionRefused checks that a refused or unknown -o word exits 2
// naming it, with nothing mounted.
func TestMountOptionRefused(t *testing.T) {
	requireFuse(t)
	lower, mnt := viewDirs(t)
	for _, c := range []struct{ word, want string }{
		{"sync", `mount option "sync" refused: the view would not make directory changes synchronous; mount the lower filesystem sync`},
		{"dirsync", `mount option "dirsync" refused: `},
		{"mand", `mount option "mand" refused: Linux no longer supports mandatory locks`},
		{"lazytime", `mount option "lazytime" refused: `},
		{"noexecc", `unknown mount option "noexecc"`},
	} {
		r := runBinary(t, "mount", "-o", "noexec,"+c.word, lower, mnt)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("-o noexec,%s: exit %d, want %d with %q; stderr:\n%s", c.word, r.code, exitUsage, c.want, r.stderr)
		}
		if mountedOn(mnt) {
			detachAll(t, mnt)
			t.Fatalf("-o noexec,%s: mounted", c.word)
		}
	}
}

// TestMountHelperOptions runs the helper as mount(8) does for an fstab line
// with noexec, and with a word it refuses.
func TestMountHelperOptions(t *testing.T) {
	requireFuse(t)
	prefix := t.TempDir()
	if r := runBinary(t, "install-helper", "--prefix", prefix, "--mandir", ""); r.code != exitOK {
		t.Fatalf("install-helper: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	helper := filepath.Join(prefix, helperName)
	lower, mnt := scriptView(t)
	t.Cleanup(func() { cleanupDaemonOf(t, mnt) })

	r := runAs(t, nil, helper, lower, mnt, "-o", "rw,noexec,nosuid,nodev,relatime,nofail,x-systemd.automount")
	if r.code != exitOK {
		t.Fatalf("helper: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	got := fusetest.MountFlags(t, mnt)
	for _, w := range []string{"noexec", "nosuid", "nodev", "relatime"} {
		if !slices.Contains(got, w) {
			t.Errorf("mount flags %v lack %s", got, w)
		}
	}
	checkExec(t, mnt, true)
	if r := runBinary(t, "umount", mnt); r.code != exitOK {
		t.Fatalf("umount: exit %d; stderr:\n%s", r.code, r.stderr)
	}

	r = runAs(t, nil, helper, lower, mnt, "-o", "rw,noexec,sync")
	if r.code != exitUsage || !strings.Contains(r.stderr, `mount option "sync" refused: `) {
		t.Errorf("helper -o rw,noexec,sync: exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
	}
	if mountedOn(mnt) {
		t.Error("mounted after the helper refused sync")
	}
}

// nonrootOptionsScript mounts, in a private mount namespace, as uid 65534
// through fusermount3 (see TestNonRootMount in the sievefs package) with
// -o noexec and runs the script on the view as that user; then it tries
// -o suid, which must be refused (a daemon that took it would mount and
// serve until timeout ends it: the test does not hang).
const nonrootOptionsScript = `
set -u
mknod "$WORK/fuse" c 10 229
chmod 666 "$WORK/fuse"
mount --bind "$WORK/fuse" /dev/fuse
as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN" mount -o noexec "$LOW" "$MNT" >"$WORK/daemon.log" 2>&1 &
pid=$!
for i in $(seq 200); do
	grep -q " $MNT fuse.sievefs " /proc/self/mounts && break
	kill -0 $pid 2>/dev/null || break
	sleep 0.05
done
echo "mountinfo: $(grep " $MNT " /proc/self/mountinfo)"
as_user "$MNT/s.sh" 2>&1 && echo "script ran" || echo "script exit $?"
kill -TERM $pid
wait $pid
echo "daemon exit $?"
# A daemon that took suid would mount and serve: timeout ends it.
timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN" mount -o suid "$LOW" "$MNT" 2>&1
echo "suid exit $?"
grep -q " $MNT " /proc/self/mounts && echo "still mounted" || echo "unmounted"
`

// TestNonRootMountOptions checks that noexec reaches a mount made through
// fusermount3 by an ordinary user, and that suid is refused there.
func TestNonRootMountOptions(t *testing.T) {
	requireFuse(t)
	bin := fusetest.UserBinary(t)
	work, low, mnt := fusetest.NonRootWork(t)
	fusetest.UserSockets(t, 65534, mnt)
	script := filepath.Join(low, "s.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{low, mnt, script} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", nonrootOptionsScript)
	cmd.Env = append(os.Environ(), "WORK="+work, "BIN="+bin, "LOW="+low, "MNT="+mnt)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("non-root mount script: %v", err)
	}
	s := string(out)
	var info string
	for _, line := range strings.Split(s, "\n") {
		if after, ok := strings.CutPrefix(line, "mountinfo: "); ok {
			info = after
		}
	}
	if f := strings.Fields(info); len(f) < 6 || !slices.Contains(strings.Split(f[5], ","), "noexec") {
		t.Errorf("the user's mount is not noexec: %q", info)
	}
	for _, want := range []string{"Permission denied", "script exit 126", "daemon exit 0",
		"mount option refused: suid: only a daemon running as root", "suid exit 2", "unmounted"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(s, "script ran") || strings.Contains(s, "\nran\n") {
		t.Error("the script ran on a noexec view")
	}
}
