package systest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/filter/readonly"
	"github.com/sievefs/sievefs/filter/remap"
	"github.com/sievefs/sievefs/filter/rename"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// orderLog is where the filters of TestFilterChainOrder write what they saw.
type orderLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *orderLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *orderLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

// orderFilter logs its pre- and post-filter calls for mkdir, and its
// pre-filter ends mkdir of the path stop with errno stop.
type orderFilter struct {
	name string
	log  *orderLog
	stop syscall.Errno
}

func (f *orderFilter) Kind() string { return "order-" + f.name }

func (f *orderFilter) Pre(r *filter.Request) error {
	if r.Op != filter.OpMkdir {
		return nil
	}
	f.log.add(f.name + ".pre " + r.Path)
	if f.stop != 0 && r.Path == "stop" {
		return f.stop
	}
	return nil
}

func (f *orderFilter) Post(r *filter.Request, err error) error {
	if r.Op != filter.OpMkdir {
		return err
	}
	f.log.add(fmt.Sprintf("%s.post %s %s", f.name, r.Path, fusetest.ErrnoName(err)))
	return err
}

// answerFilter answers getattr of "virtual" and readlink of "link" itself.
type answerFilter struct{}

func (answerFilter) Kind() string { return "answer" }

func (answerFilter) Pre(r *filter.Request) error {
	switch {
	case r.Op == filter.OpGetattr && r.Path == "virtual":
		r.Attr = filter.Attr{Ino: r.Attr.Ino, Mode: syscall.S_IFREG | 0o444, Nlink: 7, Uid: 4242, Gid: 4343, Size: 12345}
		return filter.ErrAnswered
	case r.Op == filter.OpReadlink && r.Path == "link":
		r.Target = "answered-target"
		return filter.ErrAnswered
	}
	return nil
}

// TestFilterChainOrder checks that pre-filters run in rule order and
// post-filters in reverse, that a pre-filter's errno stops the chain before
// the lower tree (the post-filters still see the errno), and that a
// pre-filter can answer getattr and readlink itself.
func TestFilterChainOrder(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "virtual")
	if err := os.Symlink("lower-target", filepath.Join(low, "link")); err != nil {
		t.Fatal(err)
	}
	log := &orderLog{}
	chain := fusetest.RulesOf(t,
		filter.Rule{Name: "A", Filter: &orderFilter{name: "A", log: log}},
		filter.Rule{Name: "B", Filter: &orderFilter{name: "B", log: log, stop: syscall.EPERM}},
		filter.Rule{Name: "C", Filter: &orderFilter{name: "C", log: log}},
		filter.Rule{Name: "answer", Filter: answerFilter{}},
	)
	// CacheNever: every stat and readlink reaches the daemon.
	v := fusetest.MountLower(t, low, sievefs.Options{Rules: chain, Cache: sievefs.CacheNever})

	if err := os.Mkdir(v.Path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := []string{"A.pre d", "B.pre d", "C.pre d", "C.post d ok", "B.post d ok", "A.post d ok"}
	if got := log.take(); !slices.Equal(got, want) {
		t.Errorf("mkdir d: filters ran as %q, want %q", got, want)
	}
	if fi, err := os.Stat(filepath.Join(low, "d")); err != nil || !fi.IsDir() {
		t.Errorf("lower d: %v", err)
	}

	fusetest.WantErr(t, "mkdir stop", os.Mkdir(v.Path("stop"), 0o755), syscall.EPERM)
	want = []string{"A.pre stop", "B.pre stop", "C.post stop EPERM", "B.post stop EPERM", "A.post stop EPERM"}
	if got := log.take(); !slices.Equal(got, want) {
		t.Errorf("mkdir stop: filters ran as %q, want %q (C.pre must not run)", got, want)
	}
	if _, err := os.Lstat(filepath.Join(low, "stop")); !os.IsNotExist(err) {
		t.Errorf("lower stop after the refused mkdir: %v, want absent", err)
	}
	if d := fusetest.RuleDecisions(v, "B"); d[filter.DecisionError] != 1 {
		t.Errorf("rule B decisions %v, want 1 error", d)
	}

	// Answered getattr: the attributes are the filter's, not the lower
	// file's (3 bytes, 0644, root).
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, v.Path("virtual"), unix.AT_STATX_FORCE_SYNC, unix.STATX_BASIC_STATS, &stx); err != nil {
		t.Fatal(err)
	}
	if stx.Size != 12345 || stx.Uid != 4242 || stx.Gid != 4343 || stx.Mode != syscall.S_IFREG|0o444 || stx.Nlink != 7 {
		t.Errorf("statx virtual: size %d uid %d gid %d mode %o nlink %d, want the answered 12345 4242 4343 100444 7",
			stx.Size, stx.Uid, stx.Gid, stx.Mode, stx.Nlink)
	}
	if target, err := os.Readlink(v.Path("link")); err != nil || target != "answered-target" {
		t.Errorf("readlink link: %q %v, want the answered target", target, err)
	}
	if target, _ := os.Readlink(filepath.Join(low, "link")); target != "lower-target" {
		t.Errorf("lower link target changed: %q", target)
	}
	if d := fusetest.RuleDecisions(v, "answer"); d[filter.DecisionAnswer] < 2 {
		t.Errorf("answer rule decisions %v, want at least 2 answers", d)
	}
}

// TestFilterCallerCondition hides a file from uid 1000 only, and checks
// that lookups, listings and reads by uid 1000 and root, alternating well
// inside the cache timeout, each get their own answer.
func TestFilterCallerCondition(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "secret", "dir/inner", "pub")
	fusetest.LayTree(t, low, "shared/f")
	if err := os.Chmod(filepath.Join(low, "shared/f"), 0o600); err != nil {
		t.Fatal(err)
	}
	uid, mode := uint32(1000), uint32(0o644)
	chain := fusetest.RulesOf(t,
		filter.Rule{
			Name:   "hide-1000",
			Filter: hide.New(fusetest.Globs("secret", "dir/**")),
			When:   filter.Condition{Only: &filter.Callers{Uids: []uint32{1000}, Gids: []uint32{3000}}},
		},
		filter.Rule{
			Name:   "remap-1000",
			Filter: remap.New(remap.Config{Paths: fusetest.Globs("shared/**"), Uid: &uid, FileMode: &mode}),
			When:   filter.Condition{Only: &filter.Callers{Uids: []uint32{1000}}},
		},
	)
	v := fusetest.MountFiltered(t, low, chain, true)

	as1000 := fusetest.StartCaller(t, 1000, 1000)
	start := time.Now()
	for i := range 20 {
		// Root first in even rounds, uid 1000 first in odd ones, so that
		// each finds what the other left in the kernel's caches.
		for k := range 2 {
			if (i+k)%2 == 0 {
				for _, name := range []string{"secret", "dir", "dir/inner"} {
					if _, err := os.Stat(v.Path(name)); err != nil {
						t.Fatalf("round %d: root stat %s: %v", i, name, err)
					}
				}
				if b, err := os.ReadFile(v.Path("dir/inner")); err != nil || string(b) != "dir/inner" {
					t.Fatalf("round %d: root read dir/inner: %q %v", i, b, err)
				}
				if names := fusetest.ListDir(t, v.Mnt); !fusetest.HasName(names, "secret") || !fusetest.HasName(names, "dir") {
					t.Fatalf("round %d: root lists %v", i, names)
				}
			} else {
				var errs []error
				var names []string
				var inner []byte
				var readErr error
				as1000.Run(t, func() {
					for _, name := range []string{"secret", "dir", "dir/inner", "pub"} {
						_, err := os.Stat(v.Path(name))
						errs = append(errs, err)
					}
					inner, readErr = os.ReadFile(v.Path("dir/inner"))
					es, err := os.ReadDir(v.Mnt)
					if err != nil {
						t.Errorf("uid 1000 readdir: %v", err)
					}
					for _, e := range es {
						names = append(names, e.Name())
					}
				})
				for j, name := range []string{"secret", "dir", "dir/inner"} {
					fusetest.WantErr(t, fmt.Sprintf("round %d: uid 1000 stat %s", i, name), errs[j], syscall.ENOENT)
				}
				fusetest.WantErr(t, fmt.Sprintf("round %d: uid 1000 stat pub", i), errs[3], 0)
				fusetest.WantErr(t, fmt.Sprintf("round %d: uid 1000 read dir/inner (got %q)", i, inner), readErr, syscall.ENOENT)
				if fusetest.HasName(names, "secret") || fusetest.HasName(names, "dir") || !fusetest.HasName(names, "pub") {
					t.Errorf("round %d: uid 1000 lists %v", i, names)
				}
			}
		}
		if t.Failed() {
			break
		}
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Logf("the rounds took %v, not well inside the 1s cache timeout", d)
	}

	// Attributes presented to one caller only, asked for in quick
	// succession.
	for i := range 50 {
		var st, st1000 syscall.Stat_t
		if err := syscall.Stat(v.Path("shared/f"), &st); err != nil {
			t.Fatal(err)
		}
		var err1000 error
		as1000.Run(t, func() { err1000 = syscall.Stat(v.Path("shared/f"), &st1000) })
		if err1000 != nil {
			t.Fatal(err1000)
		}
		if st.Uid != 0 || st.Mode != syscall.S_IFREG|0o600 {
			t.Fatalf("round %d: root sees shared/f as uid %d mode %o, want 0 100600", i, st.Uid, st.Mode)
		}
		if st1000.Uid != 1000 || st1000.Mode != syscall.S_IFREG|0o644 {
			t.Fatalf("round %d: uid 1000 sees shared/f as uid %d mode %o, want 1000 100644", i, st1000.Uid, st1000.Mode)
		}
	}
	as1000.Stop()
	// The kernel checks permissions against each caller's attributes:
	// uid 1000 is shown the owner; uid 2000 is not, and the lower 0600
	// keeps it out.
	if b, err := fusetest.ReadAs(t, 1000, 1000, v.Path("shared/f")); err != nil || string(b) != "shared/f" {
		t.Errorf("uid 1000 read shared/f: %q %v", b, err)
	}
	_, err := fusetest.ReadAs(t, 2000, 2000, v.Path("shared/f"))
	fusetest.WantErr(t, "uid 2000 read shared/f", err, syscall.EACCES)

	// The group of the condition.
	err = statErr(t, 2000, 3000, v.Path("secret"))
	fusetest.WantErr(t, "uid 2000 gid 3000 stat secret", err, syscall.ENOENT)

	// A descriptor root opened is root's; uid 1000 opening the same path
	// still fails.
	f, err := os.Open(v.Path("secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = fusetest.ReadAs(t, 1000, 1000, v.Path("secret"))
	fusetest.WantErr(t, "uid 1000 read of secret while root holds it open", err, syscall.ENOENT)
	// A user the rule does not name sees it. Child processes with those
	// real credentials get the same answers as fusetest.AsCaller's threads.
	if b, err := fusetest.ReadAs(t, 2000, 2000, v.Path("pub")); err != nil || string(b) != "pub" {
		t.Errorf("uid 2000 read pub: %q %v", b, err)
	}
	if err := statErr(t, 2000, 2000, v.Path("secret")); err != nil {
		t.Errorf("uid 2000 stat secret: %v", err)
	}
	if _, name := fusetest.ParseAs(t, fusetest.RunAs(t, 1000, 1000, "read", v.Path("secret"))); name != "ENOENT" {
		t.Errorf("child process as uid 1000 reading secret: %s, want ENOENT", name)
	}
	if b, name := fusetest.ParseAs(t, fusetest.RunAs(t, 2000, 2000, "read", v.Path("secret"))); name != "ok" || string(b) != "secret" {
		t.Errorf("child process as uid 2000 reading secret: %q %s", b, name)
	}
}

// TestFilterReload changes the chain of a running mount: what is hidden,
// read-only, remapped and renamed changes at once (well within the cache
// timeout, also with CacheAlways's day), in both directions; files open
// before stay open, and the rule counts start again.
func TestFilterReload(t *testing.T) {
	for _, cache := range []sievefs.CacheMode{sievefs.CacheAuto, sievefs.CacheAlways} {
		t.Run(string(cache), func(t *testing.T) { testFilterReload(t, cache) })
	}
}

func testFilterReload(t *testing.T, cache sievefs.CacheMode) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "a", "b", "dir/c", "e", "f", "docs/a.markdown")
	v := fusetest.MountLower(t, low, sievefs.Options{Cache: cache, Rules: fusetest.RulesOf(t, filter.Rule{Filter: hide.New(fusetest.Globs("a"))})})
	p := v.Path

	_, err := os.Stat(p("a"))
	fusetest.WantErr(t, "stat a under the first chain", err, syscall.ENOENT)
	// Warm the caches: everything else is looked up and listed.
	for _, name := range []string{"b", "dir", "dir/c", "e", "f", "docs/a.markdown"} {
		if _, err := os.Stat(p(name)); err != nil {
			t.Fatal(err)
		}
	}
	fusetest.ListDir(t, v.Mnt)
	fusetest.ListDir(t, p("docs"))
	open, err := os.OpenFile(p("b"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	openC, err := os.Open(p("dir/c"))
	if err != nil {
		t.Fatal(err)
	}
	defer openC.Close()
	if st := v.Mount.Status().Filters; len(st) != 1 || st[0].Decisions[filter.DecisionError] == 0 {
		t.Errorf("rule counts under the first chain: %+v, want errors counted", st)
	}

	uid := uint32(1234)
	ren, err := rename.New(fusetest.Globs("docs/**"), ".markdown", ".md")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := v.Mount.SetRules(fusetest.RulesOf(t,
		filter.Rule{Name: "second", Filter: hide.New(fusetest.Globs("b", "dir/**"))},
		filter.Rule{Filter: readonly.New(fusetest.Globs("e"))},
		filter.Rule{Filter: remap.New(remap.Config{Paths: fusetest.Globs("f"), Uid: &uid})},
		filter.Rule{Filter: ren},
	)); err != nil {
		t.Fatal(err)
	}
	// Per-rule counts start again with the new chain.
	if st := v.Mount.Status().Filters; len(st) != 4 || st[0].Rule != "second" || len(st[0].Decisions) != 0 {
		t.Errorf("rule counts right after the reload: %+v, want the new rules with none", st)
	}
	// a was refused under the first chain and is shown now.
	if b, err := os.ReadFile(p("a")); err != nil || string(b) != "a" {
		t.Errorf("read a right after the reload unhid it: %q %v", b, err)
	}
	for _, name := range []string{"b", "dir", "dir/c", "docs/a.markdown"} {
		_, err := os.Stat(p(name))
		fusetest.WantErr(t, "stat "+name+" right after the reload", err, syscall.ENOENT)
	}
	if names := fusetest.ListDir(t, v.Mnt); fmt.Sprint(names) != "[a docs e f]" {
		t.Errorf("after the reload the root lists %v, want [a docs e f]", names)
	}
	if names := fusetest.ListDir(t, p("docs")); fmt.Sprint(names) != "[a.md]" {
		t.Errorf("after the reload docs lists %v, want [a.md]", names)
	}
	if b, err := os.ReadFile(p("docs/a.md")); err != nil || string(b) != "docs/a.markdown" {
		t.Errorf("read docs/a.md right after the reload: %q %v", b, err)
	}
	fusetest.WantErr(t, "write e right after the reload made it read-only", os.WriteFile(p("e"), []byte("x"), 0), syscall.EROFS)
	var st syscall.Stat_t
	if err := syscall.Stat(p("f"), &st); err != nil || st.Uid != 1234 {
		t.Errorf("stat f right after the reload remapped it: uid %d %v, want 1234", st.Uid, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Logf("checks after the reload took %v", d)
	}

	// The files open before stay open, for reading and writing.
	buf := make([]byte, 8)
	if n, err := open.ReadAt(buf, 0); string(buf[:n]) != "b" {
		t.Errorf("read of b opened before the reload: %q %v", buf[:n], err)
	}
	if _, err := open.WriteAt([]byte("B2"), 0); err != nil {
		t.Errorf("write to b opened before the reload: %v", err)
	}
	if n, err := openC.ReadAt(buf, 0); string(buf[:n]) != "dir/c" {
		t.Errorf("read of dir/c opened before the reload: %q %v", buf[:n], err)
	}
	if b, _ := os.ReadFile(filepath.Join(low, "b")); string(b) != "B2" {
		t.Errorf("lower b: %q, want B2", b)
	}

	// And back to no filters at all.
	if err := v.Mount.SetRules(nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "dir", "dir/c", "docs/a.markdown"} {
		if _, err := os.Stat(p(name)); err != nil {
			t.Errorf("stat %s after dropping every rule: %v", name, err)
		}
	}
	_, err = os.Stat(p("docs/a.md"))
	fusetest.WantErr(t, "stat docs/a.md after dropping the rename rule", err, syscall.ENOENT)
	if err := os.WriteFile(p("e"), []byte("e2"), 0); err != nil {
		t.Errorf("write e after dropping every rule: %v", err)
	}
	if err := syscall.Stat(p("f"), &st); err != nil || st.Uid != 0 {
		t.Errorf("stat f after dropping every rule: uid %d %v, want 0", st.Uid, err)
	}
}

// TestFilterReloadNegativeEntry shows, by a reload, names that were looked
// up and found absent under the old chain: one a hide rule refused, and
// ones a rename rule mapped to lower names that do not exist, in the root
// and in a subdirectory.
func TestFilterReloadNegativeEntry(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "a", "x.md", "docs/y.md")
	ren, err := rename.New(fusetest.Globs("**"), ".markdown", ".md")
	if err != nil {
		t.Fatal(err)
	}
	v := fusetest.MountFiltered(t, low, fusetest.RulesOf(t, filter.Rule{Filter: hide.New(fusetest.Globs("a"))}, filter.Rule{Filter: ren}), false)
	names := []string{"a", "x.md", "docs/y.md"}
	for _, name := range names {
		_, err := os.Stat(v.Path(name))
		fusetest.WantErr(t, "stat "+name+" under the first chain", err, syscall.ENOENT)
	}
	if err := v.Mount.SetRules(fusetest.RulesOf(t)); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if _, err := os.Stat(v.Path(name)); err != nil {
			t.Errorf("stat %s right after the reload showed it: %v (the kernel kept a negative entry from the old chain)", name, err)
		}
	}
}

// TestFilterUntouchedPassthrough checks that with a policy in place, files
// no rule covers keep kernel passthrough: reading and writing them sends
// no READ or WRITE to the daemon.
func TestFilterUntouchedPassthrough(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "secrets/k", "archive/old", "shared/s", "work/")
	data := fusetest.RandomBytes(t, 2<<20)
	fusetest.WriteFile(t, filepath.Join(low, "work/big"), data)
	uid, mode := uint32(1000), uint32(0o640)
	chain := fusetest.RulesOf(t,
		filter.Rule{Filter: hide.New(fusetest.Globs("secrets/**", "**/.env"))},
		filter.Rule{Filter: readonly.New(fusetest.Globs("archive/**"))},
		filter.Rule{Filter: remap.New(remap.Config{Paths: fusetest.Globs("shared/**"), Uid: &uid, FileMode: &mode})},
	)
	v := fusetest.MountFiltered(t, low, chain, false)
	fusetest.RequirePassthrough(t, v.Mount)

	tr := fusetest.NewFuseTrace(t, v.Mnt)
	if tr != nil {
		tr.Reset(t)
	}
	r0, w0 := fusetest.DaemonIO(v)
	f, err := os.OpenFile(v.Path("work/big"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Error("work/big read through the mount differs from the lower file")
	}
	patch := fusetest.RandomBytes(t, 256<<10)
	if _, err := f.WriteAt(patch, 12345); err != nil {
		t.Fatal(err)
	}
	if st := v.Mount.Status(); st.OpenFiles.Passthrough != 1 || st.OpenFiles.DaemonServed != 0 {
		t.Errorf("open files %+v, want 1 passthrough", st.OpenFiles)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// A new file, too.
	fusetest.WriteFile(t, v.Path("work/new"), data[:100<<10])
	if b := fusetest.ReadFile(t, v.Path("work/new")); !bytes.Equal(b, data[:100<<10]) {
		t.Error("work/new read back differs")
	}
	r1, w1 := fusetest.DaemonIO(v)
	if r1 != r0 || w1 != w0 {
		t.Errorf("daemon served data of uncovered files: reads %d -> %d, writes %d -> %d", r0, r1, w0, w1)
	}
	if tr != nil {
		c := tr.Counts(t)
		t.Logf("FUSE requests: %v", c)
		if c[fusetest.OpOpen] == 0 {
			t.Errorf("tracepoint saw no OPEN: the trace does not work (%v)", c)
		}
		if c[fusetest.OpRead] != 0 || c[fusetest.OpWrite] != 0 {
			t.Errorf("kernel sent %d READ and %d WRITE requests, want none", c[fusetest.OpRead], c[fusetest.OpWrite])
		}
	}
	copy(data[12345:], patch)
	if !bytes.Equal(fusetest.ReadFile(t, filepath.Join(low, "work/big")), data) {
		t.Error("lower work/big differs from what was written")
	}
}

// TestRulesRefused checks that rules which cannot run together are refused
// with ErrRules: at mount, before anything is mounted, and at SetRules,
// where the rules in use stay.
func TestRulesRefused(t *testing.T) {
	fusetest.RequireFuse(t)
	named, err := rename.New(fusetest.Globs("**"), ".a", ".b")
	if err != nil {
		t.Fatal(err)
	}
	bad := []filter.Rule{{Filter: named, When: everyoneButRoot}} // a name mapper with a condition
	low, mnt := fusetest.NewLower(t), t.TempDir()
	m, err := sievefs.MountView(low, mnt, sievefs.Options{Rules: bad})
	if err == nil {
		m.Unmount()
		t.Fatal("mounted with a conditional name mapper")
	}
	if !errors.Is(err, sievefs.ErrRules) || !strings.Contains(err.Error(), "only/unless") {
		t.Errorf("error %v; want ErrRules saying why", err)
	}
	if fusetest.SievefsMounted(mnt) {
		t.Error("mounted after the error")
	}

	fusetest.LayTree(t, low, "secret")
	v := fusetest.MountFiltered(t, low, fusetest.RulesOf(t, filter.Rule{Filter: hide.New(fusetest.Globs("secret"))}), false)
	if err := v.Mount.SetRules(bad); !errors.Is(err, sievefs.ErrRules) {
		t.Errorf("SetRules of a conditional name mapper: %v, want ErrRules", err)
	}
	if _, err := os.Stat(v.Path("secret")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("stat secret after a refused SetRules: %v; want the old rules (ENOENT)", err)
	}

	plain := fusetest.MountLower(t, low, sievefs.Options{})
	if err := plain.Mount.SetRules(nil); !errors.Is(err, sievefs.ErrNoRules) {
		t.Errorf("SetRules on a mount made with nil rules: %v, want ErrNoRules", err)
	}
}
