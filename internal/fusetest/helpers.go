package sievefs_test

// Helpers shared by the tests of this package: files and data, waiting,
// the sievefs binary run as a separate daemon, mount table checks, snapshots
// of directory trees and a counter of FUSE requests read from the kernel's
// fuse:fuse_request_send tracepoint.

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
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestMain runs a helper when the test binary is started as one (see
// runHelper); otherwise it runs the tests and removes the sievefs binary
// built for them.
func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		if err := helpers[name](os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	fusetest.RemoveBinary()
	os.Exit(code)
}

// helperEnv names the helper a re-executed test binary runs.
const helperEnv = "SIEVEFS_TEST_HELPER"

// helpers are what a child process of a test can run.
var helpers = map[string]func(args []string) error{
	"mmap":   mmapHelper,
	"mwrite": mwriteHelper,
	"beside": besideHelper,
}

// beside changes the lower tree from another process, as a program beside
// the mount does: the daemon's watch ignores its own process, which an
// in-process test mount shares with the test. op is one of rename OLD NEW,
// exchange A B, symlink TARGET LINK, append PATH TEXT, chmod PATH OCTAL,
// mkdir PATH, remove PATH, and append-hold PATH TEXT DURATION: append and
// keep the file open for DURATION.
func beside(t testing.TB, op string, args ...string) {
	t.Helper()
	runHelper(t, "beside", append([]string{op}, args...)...)
}

// startBeside starts beside's op in another process and returns it
// running; the test waits for it (a test that fails first, at its end).
func startBeside(t testing.TB, op string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{op}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"=beside")
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

// runHelper runs helper name with args in a child process (this test
// binary again) and returns its standard output; the test fails if the
// child fails or runs for more than 30 seconds.
func runHelper(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %s: %v\n%s", name, err, stderr.String())
	}
	return string(out)
}

// randomBytes returns n random bytes.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile writes data to path, failing the test on error.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFile reads path, failing the test on error.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventually polls cond every 10ms until it holds or timeout passes, and
// fails the test with what otherwise.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// requirePassthrough skips the test unless the mount uses passthrough.
func requirePassthrough(t testing.TB, m *sievefs.Mount) {
	t.Helper()
	if st := m.Status(); !st.Passthrough.Active {
		t.Skipf("passthrough is not active: %s", st.Passthrough.Reason)
	}
}

// backingFor returns the backing file of the lower path, or nil.
func backingFor(st sievefs.Status, lowerPath string) *sievefs.BackingFile {
	for i, b := range st.BackingFiles {
		if b.Path == lowerPath {
			return &st.BackingFiles[i]
		}
	}
	return nil
}

// sievefsMounted reports whether a fuse.sievefs filesystem is mounted on mnt.
func sievefsMounted(mnt string) bool { return fusetest.SievefsMounted(mnt) }

// openFDs counts the descriptors this process holds.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// sievefsBinary builds ./cmd/sievefs once per test run and returns its path.
func sievefsBinary(t testing.TB) string { return fusetest.Binary(t) }

// daemon is a sievefs process serving a mount.
type daemon = fusetest.Daemon

// startDaemon runs `sievefs mount [flags] lower mnt` and waits until the
// mount appears. Cleanup always resumes, terminates and reaps the process,
// and detaches the mount if it is still there.
func startDaemon(t *testing.T, lower, mnt string, flags ...string) *daemon {
	t.Helper()
	args := append(append([]string{"mount"}, flags...), lower, mnt)
	return fusetest.StartDaemon(t, exec.Command(sievefsBinary(t), args...), mnt,
		func() bool { return sievefsMounted(mnt) },
		func(t testing.TB) {
			if sievefsMounted(mnt) {
				t.Errorf("%s still mounted after the daemon exited; detaching it", mnt)
				unix.Unmount(mnt, unix.MNT_DETACH)
			}
		})
}

// processState returns the state letter of /proc/PID/stat (R, S, T…).
func processState(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// snapshot describes every entry under dir (type, mode, owner, size, mtime,
// content digest, symlink target, extended attributes), to tell whether
// anything there changed.
func snapshot(t testing.TB, dir string) map[string]string {
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
		desc += " xattrs=" + xattrs(path)
		rel, _ := filepath.Rel(dir, path)
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

// xattrs lists path's extended attributes and values, without following a
// symlink.
func xattrs(path string) string {
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

// sameSnapshot fails the test with the differences between two snapshots.
func sameSnapshot(t testing.TB, what string, before, after map[string]string) {
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

// fuseTrace counts the requests the kernel sends to one FUSE mount, with
// the fuse:fuse_request_send tracepoint in a private tracefs instance.
type fuseTrace struct {
	inst string
}

// FUSE opcodes, from include/uapi/linux/fuse.h.
const (
	opOpen  = 14
	opRead  = 15
	opWrite = 16
)

// newFuseTrace starts counting the requests sent to the mount on mnt. It
// returns nil, after logging why, when tracing is unavailable. Cleanup
// removes the instance and unmounts tracefs.
func newFuseTrace(t *testing.T, mnt string) *fuseTrace {
	t.Helper()
	// Not t.TempDir: its removal must never walk into a tracefs that is
	// still mounted.
	dir, err := os.MkdirTemp("", "sievefs-tracefs-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("nodev", dir, "tracefs", 0, ""); err != nil {
		os.Remove(dir)
		t.Logf("no tracepoint check: mount tracefs: %v", err)
		return nil
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount tracefs %s: %v", dir, err)
			return
		}
		os.Remove(dir)
	})
	if _, err := os.Stat(filepath.Join(dir, "events/fuse/fuse_request_send/format")); err != nil {
		t.Logf("no tracepoint check: %v", err)
		return nil
	}
	inst := filepath.Join(dir, "instances", fmt.Sprintf("sievefs-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(inst, 0o755); err != nil {
		t.Logf("no tracepoint check: tracefs instance: %v", err)
		return nil
	}
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(inst, "events/fuse/fuse_request_send/enable"), []byte("0"), 0)
		if err := os.Remove(inst); err != nil {
			t.Errorf("remove tracefs instance: %v", err)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		t.Fatal(err)
	}
	// The event records the kernel's dev_t of the connection, MKDEV(major, minor).
	conn := uint64(unix.Major(st.Dev))<<20 | uint64(unix.Minor(st.Dev))
	ev := filepath.Join(inst, "events/fuse/fuse_request_send")
	for _, w := range []struct{ file, val string }{
		{"filter", fmt.Sprintf("connection == %d", conn)},
		{"enable", "1"},
	} {
		if err := os.WriteFile(filepath.Join(ev, w.file), []byte(w.val), 0); err != nil {
			t.Logf("no tracepoint check: write %s: %v", w.file, err)
			return nil
		}
	}
	return &fuseTrace{inst: inst}
}

// reset forgets the requests counted so far.
func (tr *fuseTrace) reset(t testing.TB) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(tr.inst, "trace"), nil, 0); err != nil {
		t.Fatal(err)
	}
}

var opcodeRE = regexp.MustCompile(`fuse_request_send: .* opcode (\d+) `)

// counts returns the requests sent since the last reset, by opcode.
func (tr *fuseTrace) counts(t testing.TB) map[int]int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tr.inst, "trace"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, line := range strings.Split(string(data), "\n") {
		if m := opcodeRE.FindStringSubmatch(line); m != nil {
			op, _ := strconv.Atoi(m[1])
			out[op]++
		}
	}
	return out
}

// testSize is how big a test runs: the environment variable name when set,
// else normal, or underRace under the race detector (which slows the daemon
// several times).
func testSize(t *testing.T, name string, normal, underRace int) int {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number", name, s)
		}
		return n
	}
	if raceEnabled {
		return underRace
	}
	return normal
}
