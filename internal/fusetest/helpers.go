package fusetest

// Helpers shared by the tests of several packages: helper processes (the
// test binary started again to run one function), files and data,
// waiting, the sievefs binary run as a separate daemon, and snapshots of
// directory trees.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
)

// Main is what a test package's TestMain calls. When the test binary was
// started as a helper process (see RunHelper), it runs only that helper;
// otherwise it runs the tests and removes the sievefs binary built for
// them. It never returns.
func Main(m *testing.M) {
	if name := os.Getenv(HelperEnv); name != "" {
		fn, ok := helpers[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "no helper %q in this test binary\n", name)
			os.Exit(2)
		}
		if err := fn(os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	mainRuns = true
	code := m.Run()
	RemoveBinary()
	os.Exit(code)
}

// HelperEnv names the helper a re-executed test binary runs.
const HelperEnv = "SIEVEFS_TEST_HELPER"

// helpers are what a child process of a test can run: those of this
// package and those the test package registered with Helper.
var helpers = map[string]func(args []string) error{
	"beside":    besideHelper,
	"filter-as": filterAsHelper,
}

// mainRuns is set when Main runs the tests: only then can the test binary
// be started again as a helper.
var mainRuns bool

// Helper registers fn as the helper process name, which RunHelper (or a
// command with HelperEnv=name in its environment) runs with the arguments
// the test binary was started with. Call it from an init function of the
// test package, whose TestMain must call Main.
func Helper(name string, fn func(args []string) error) {
	if _, ok := helpers[name]; ok {
		panic("fusetest: helper " + name + " registered twice")
	}
	helpers[name] = fn
}

// helperCommand returns the test binary started as helper name with args.
func helperCommand(t testing.TB, ctx context.Context, name string, args ...string) *exec.Cmd {
	t.Helper()
	if !mainRuns {
		t.Fatalf("helper %s: the test package's TestMain must call fusetest.Main", name)
	}
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), HelperEnv+"="+name)
	return cmd
}

// Beside changes the lower tree from another process, as a program beside
// the mount does: the daemon's watch ignores its own process, which an
// in-process test mount shares with the test. op is one of rename OLD NEW,
// exchange A B, symlink TARGET LINK, append PATH TEXT, chmod PATH OCTAL,
// mkdir PATH, remove PATH, and append-hold PATH TEXT DURATION: append and
// keep the file open for DURATION.
func Beside(t testing.TB, op string, args ...string) {
	t.Helper()
	RunHelper(t, "beside", append([]string{op}, args...)...)
}

// StartBeside starts Beside's op in another process and returns it
// running; the test waits for it (a test that fails first, at its end).
func StartBeside(t testing.TB, op string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := helperCommand(t, context.Background(), "beside", append([]string{op}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Wait() })
	return cmd
}

func besideHelper(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("want OP ARGS..., got %q", args)
	}
	a := args[1:]
	arg := func(i int) string {
		if i < len(a) {
			return a[i]
		}
		return ""
	}
	switch args[0] {
	case "rename":
		return os.Rename(arg(0), arg(1))
	case "exchange":
		return unix.Renameat2(unix.AT_FDCWD, arg(0), unix.AT_FDCWD, arg(1), unix.RENAME_EXCHANGE)
	case "symlink":
		return os.Symlink(arg(0), arg(1))
	case "append", "append-hold":
		f, err := os.OpenFile(arg(0), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(arg(1)); err != nil {
			f.Close()
			return err
		}
		if args[0] == "append-hold" {
			d, err := time.ParseDuration(arg(2))
			if err != nil {
				f.Close()
				return err
			}
			time.Sleep(d)
		}
		return f.Close()
	case "chmod":
		mode, err := strconv.ParseUint(arg(1), 8, 32)
		if err != nil {
			return err
		}
		return os.Chmod(arg(0), os.FileMode(mode))
	case "mkdir":
		return os.Mkdir(arg(0), 0o755)
	case "remove":
		return os.Remove(arg(0))
	}
	return fmt.Errorf("unknown op %q", args[0])
}

// RunHelper runs helper name with args in a child process (this test
// binary again) and returns its standard output; the test fails if the
// child fails or runs for more than 30 seconds.
func RunHelper(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := helperCommand(t, ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %s: %v\n%s", name, err, stderr.String())
	}
	return string(out)
}

// RandomBytes returns n random bytes.
func RandomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// WriteFile writes data to path, failing the test on error.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadFile reads path, failing the test on error.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Eventually polls cond every 10ms until it holds or timeout passes, and
// fails the test with what otherwise.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// RequirePassthrough skips the test unless the mount uses passthrough.
func RequirePassthrough(t testing.TB, m *sievefs.Mount) {
	t.Helper()
	if st := m.Status(); !st.Passthrough.Active {
		t.Skipf("passthrough is not active: %s", st.Passthrough.Reason)
	}
}

// StartMount runs `sievefs mount [flags] lower mnt` (the binary Binary
// builds) and waits until the mount appears. Cleanup always resumes,
// terminates and reaps the process, and detaches the mount if it is still
// there.
func StartMount(t *testing.T, lower, mnt string, flags ...string) *Daemon {
	t.Helper()
	args := append(append([]string{"mount"}, flags...), lower, mnt)
	return StartDaemon(t, exec.Command(Binary(t), args...), mnt,
		func() bool { return SievefsMounted(mnt) },
		func(t testing.TB) {
			if SievefsMounted(mnt) {
				t.Errorf("%s still mounted after the daemon exited; detaching it", mnt)
				unix.Unmount(mnt, unix.MNT_DETACH)
			}
		})
}

// Snapshot describes every entry under dir (type, mode, owner, size, mtime,
// content digest, symlink target, extended attributes), to tell whether
// anything there changed.
func Snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d mtime=%d.%09d",
			st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256=%x", sha256.Sum256(data))
		case unix.S_IFLNK:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			desc += " target=" + target
		}
		desc += " xattrs=" + Xattrs(path)
		rel, _ := filepath.Rel(dir, path)
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

// Xattrs lists path's extended attributes and values, without following a
// symlink.
func Xattrs(path string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(path, buf)
	if err != nil || n == 0 {
		return ""
	}
	names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		val := make([]byte, 64<<10)
		m, _ := unix.Lgetxattr(path, name, val)
		fmt.Fprintf(&b, "%s=%q;", name, val[:max(m, 0)])
	}
	return b.String()
}

// SameSnapshot fails the test with the differences between two snapshots.
func SameSnapshot(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if w, ok := after[k]; !ok {
			t.Errorf("%s: %s disappeared (was %s)", what, k, v)
		} else if w != v {
			t.Errorf("%s: %s changed:\n  was %s\n  now %s", what, k, v, w)
		}
	}
	for k, w := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s: %s appeared (%s)", what, k, w)
		}
	}
}
