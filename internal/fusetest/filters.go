package fusetest

// Helpers of the tests of rules on a mount (filter/<name>/mount_test.go,
// systest): rules, errno checks, lower trees, and running code as another
// caller, in this process on a thread of its own (AsCaller) or in a child
// process (RunAs, the "filter-as" helper).

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/config"
)

// Globs parses globs, which must be valid.
func Globs(gs ...string) filter.Patterns {
	ps := make(filter.Patterns, len(gs))
	for i, g := range gs {
		ps[i] = filter.MustPattern(g)
	}
	return ps
}

// RulesOf returns rules as Options.Rules takes them: never nil, so that
// a mount with no rules may still be given some (Mount.SetRules).
func RulesOf(t testing.TB, rules ...filter.Rule) []filter.Rule {
	return append([]filter.Rule{}, rules...)
}

// PolicyRules builds the rules of a policy file's text (name is the file
// it is reported as) as the sievefs command does, and closes them when tb
// ends.
func PolicyRules(tb testing.TB, name string, yaml []byte) []filter.Rule {
	tb.Helper()
	pol, err := config.Parse(name, yaml)
	if err != nil {
		tb.Fatal(err)
	}
	rules, closer, err := pol.Build()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { closer.Close() })
	return rules
}

// ErrnoName names err's errno ("ENOENT"), "ok" for nil, or err itself.
func ErrnoName(err error) string {
	if err == nil {
		return "ok"
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
		return "E" + strconv.Itoa(int(e))
	}
	return err.Error()
}

// WantErr fails the test unless err carries the errno want (0: no error).
func WantErr(t testing.TB, what string, err error, want syscall.Errno) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Errorf("%s: %v, want success", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Errorf("%s: %v (%s), want %s", what, err, ErrnoName(err), unix.ErrnoName(want))
	}
}

// LayTree makes files (content = their name unless given) and directories
// (names ending in "/") under dir, with modes 0755 and 0644.
func LayTree(t testing.TB, dir string, entries ...string) {
	t.Helper()
	for _, e := range entries {
		p := filepath.Join(dir, e)
		if strings.HasSuffix(e, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(e), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// NewLower returns a new lower directory searchable by everyone (see
// TempLower: inside $SIEVEFS_TEST_LOWER when it is set).
func NewLower(t testing.TB) string {
	t.Helper()
	low := TempLower(t)
	if os.Getenv(LowerEnv) == "" {
		OpenUp(t, low)
	}
	return low
}

// OpenUp makes path and its parents up to (not including) /tmp searchable
// by everyone, so that other users reach a lower tree or a mountpoint in a
// test's temporary directories.
func OpenUp(t testing.TB, path string) {
	t.Helper()
	for d := path; d != "/" && d != os.TempDir() && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o005 != 0o005 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o055); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// MountFiltered mounts a view of low with rules, reachable by other users
// when allowOther is set.
func MountFiltered(t testing.TB, low string, rules []filter.Rule, allowOther bool) *View {
	t.Helper()
	v := MountLower(t, low, sievefs.Options{Rules: rules, AllowOther: allowOther})
	if allowOther {
		OpenUp(t, filepath.Dir(v.Mnt))
	}
	return v
}

// ListDir lists dir the way ls -l does (getdents, then lstat of every
// entry) and returns the sorted names; entries it cannot lstat are errors.
func ListDir(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("readdir %s: %v", dir, err)
	}
	var out []string
	for _, e := range es {
		if _, err := e.Info(); err != nil {
			t.Errorf("ls -l %s: %s listed but lstat: %v", dir, e.Name(), err)
		}
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// GetdentsSmall lists dir with many small getdents calls, so that the
// kernel asks the daemon several times, at offsets past 0, and returns
// the sorted names without "." and "..". (The mount negotiates
// READDIRPLUS_AUTO: the kernel asks for attributes with the first
// request, and with the next ones only once the lister stats entries.)
func GetdentsSmall(t testing.TB, dir string) []string {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var names []string
	buf := make([]byte, 256)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatalf("getdents %s: %v", dir, err)
		}
		if n == 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	sort.Strings(names)
	return names
}

// HasName reports whether names holds name.
func HasName(names []string, name string) bool { return slices.Contains(names, name) }

// CallerThread is an operating system thread of its own whose filesystem
// uid and gid (setfsuid, setfsgid) are another caller's, without
// supplementary groups: the kernel checks permissions as that user (the
// change from fsuid 0 drops the thread's file capabilities) and FUSE
// requests carry that caller, with the thread's id as pid. The thread is
// never given back to the Go scheduler: it exits when the caller is
// stopped.
type CallerThread struct {
	tid  int
	work chan func()
	done chan any // what fn panicked with, or nil
}

// StartCaller starts a thread acting as uid:gid; Cleanup stops it.
func StartCaller(t testing.TB, uid, gid uint32) *CallerThread {
	t.Helper()
	c := &CallerThread{work: make(chan func()), done: make(chan any)}
	ready := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		if err := unix.Setgroups(nil); err != nil {
			ready <- err
			return
		}
		unix.Setfsgid(int(gid))
		unix.Setfsuid(int(uid))
		// An invalid id changes nothing and returns the current one.
		if cur, _ := unix.SetfsuidRetUid(-1); cur != int(uid) {
			ready <- fmt.Errorf("fsuid is %d, want %d", cur, uid)
			return
		}
		if cur, _ := unix.SetfsgidRetGid(-1); cur != int(gid) {
			ready <- fmt.Errorf("fsgid is %d, want %d", cur, gid)
			return
		}
		c.tid = unix.Gettid()
		ready <- nil
		for fn := range c.work {
			c.done <- runRecover(fn)
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("as uid %d gid %d: %v", uid, gid, err)
	}
	t.Cleanup(c.Stop)
	return c
}

func runRecover(fn func()) (p any) {
	defer func() { p = recover() }()
	fn()
	return nil
}

// Run runs fn on the thread and waits for it. fn must not call t.Fatal
// (it runs on another goroutine than the test's).
func (c *CallerThread) Run(t testing.TB, fn func()) {
	t.Helper()
	c.work <- fn
	if p := <-c.done; p != nil {
		t.Fatalf("panic as another caller: %v", p)
	}
}

// Stop ends the thread; it may be called more than once.
func (c *CallerThread) Stop() {
	if c.work != nil {
		close(c.work)
		c.work = nil
	}
}

// AsCaller runs fn on a new CallerThread of uid:gid and returns the
// thread's id, the pid FUSE requests carry. fn must not call t.Fatal.
func AsCaller(t testing.TB, uid, gid uint32, fn func()) (tid int) {
	t.Helper()
	c := StartCaller(t, uid, gid)
	defer c.Stop()
	c.Run(t, fn)
	return c.tid
}

// ReadAs reads path as uid:gid (AsCaller).
func ReadAs(t testing.TB, uid, gid uint32, path string) (data []byte, err error) {
	t.Helper()
	AsCaller(t, uid, gid, func() { data, err = os.ReadFile(path) })
	return data, err
}

// RunAs runs the "filter-as" helper in a child process that drops to
// uid:gid (real, effective and saved ids, no supplementary groups) before
// doing op on path: "read" prints the hex of the file's contents, "mmap"
// the hex of a read-only shared mapping of it. Either prints "ERR NAME" when
// it fails with an errno.
func RunAs(t testing.TB, uid, gid uint32, op, path string) string {
	t.Helper()
	return strings.TrimSpace(RunHelper(t, "filter-as", strconv.Itoa(int(uid)), strconv.Itoa(int(gid)), op, path))
}

// filterAsHelper is the child of RunAs.
func filterAsHelper(args []string) error {
	if len(args) != 4 {
		return fmt.Errorf("want UID GID OP PATH, got %q", args)
	}
	uid, err := strconv.Atoi(args[0])
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	// The syscall package changes the ids of every thread of the process.
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(gid); err != nil {
		return err
	}
	if err := syscall.Setuid(uid); err != nil {
		return err
	}
	if os.Getuid() != uid || os.Geteuid() != uid || os.Getegid() != gid {
		return fmt.Errorf("ids are %d/%d/%d after dropping to %d:%d", os.Getuid(), os.Geteuid(), os.Getegid(), uid, gid)
	}
	var data []byte
	switch op, path := args[2], args[3]; op {
	case "read":
		data, err = os.ReadFile(path)
	case "mmap":
		data, err = mmapRead(path)
	default:
		return fmt.Errorf("unknown op %q", op)
	}
	if err != nil {
		fmt.Println("ERR", ErrnoName(err))
		return nil
	}
	fmt.Println(hex.EncodeToString(data))
	return nil
}

// mmapRead maps the file at path read-only and shared and returns a copy
// of the mapping. Only for a child process (see RunAs).
func mmapRead(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	defer unix.Munmap(m)
	return append([]byte(nil), m...), nil
}

// ParseAs decodes the output of RunAs: the data, or the errno name.
func ParseAs(t testing.TB, out string) ([]byte, string) {
	t.Helper()
	if name, ok := strings.CutPrefix(out, "ERR "); ok {
		return nil, name
	}
	b, err := hex.DecodeString(out)
	if err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	return b, "ok"
}

// DaemonIO returns the mount's daemon READ and WRITE counts.
func DaemonIO(v *View) (reads, writes uint64) {
	c := v.Mount.Status().Counters
	return c.DaemonReads, c.DaemonWrites
}

// RuleDecisions returns the decision counts of the rule named name.
func RuleDecisions(v *View, name string) map[filter.Decision]uint64 {
	for _, r := range v.Mount.Status().Filters {
		if r.Rule == name {
			return r.Decisions
		}
	}
	return nil
}
