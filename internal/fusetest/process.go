package fusetest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The sievefs command, built once per test process.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// Binary builds ./cmd/sievefs of this module once per test process and
// returns the path of the binary. TestMain calls RemoveBinary at the end.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			binErr = err
			return
		}
		out, err := exec.Command(gobin, "env", "GOMOD").Output()
		if err != nil {
			binErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if binDir, binErr = os.MkdirTemp("", "sievefs-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "sievefs")
		cmd := exec.Command(gobin, "build", "-o", binPath, "./cmd/sievefs")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/sievefs: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// UserBinary is Binary, made reachable by every user: for tests that run
// it as an ordinary user.
func UserBinary(t testing.TB) string {
	t.Helper()
	bin := Binary(t)
	for d := filepath.Dir(bin); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

// RemoveBinary deletes what Binary built.
func RemoveBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// SyncBuffer is a bytes.Buffer that a child's output and the test may use at
// once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// MountEntry is one line of /proc/self/mountinfo.
type MountEntry struct{ Point, FSType, Source string }

// Mounts lists the mounts of this process's namespace.
func Mounts() []MountEntry {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []MountEntry
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		for i := 6; i+2 < len(f); i++ {
			if f[i] == "-" {
				out = append(out, MountEntry{Point: f[4], FSType: f[i+1], Source: f[i+2]})
				break
			}
		}
	}
	return out
}

// SievefsMounted reports whether a sievefs view is mounted on path.
func SievefsMounted(path string) bool {
	for _, m := range Mounts() {
		if m.Point == path && m.FSType == "fuse.sievefs" {
			return true
		}
	}
	return false
}

// NonRootWork prepares a test's mount by an ordinary user: it skips
// unless fusermount3, setpriv and unshare are installed, and returns a
// temporary directory the user can reach with empty low and mnt
// directories in it (owned by root; the caller gives them away).
func NonRootWork(t testing.TB) (work, low, mnt string) {
	t.Helper()
	for _, tool := range []string{"fusermount3", "setpriv", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install fuse3 util-linux)", tool)
		}
	}
	work = t.TempDir()
	// t.TempDir's directories are 0700; the user must reach its own.
	for _, d := range []string{filepath.Dir(work), work} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	low, mnt = filepath.Join(work, "low"), filepath.Join(work, "mnt")
	for _, d := range []string{low, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return work, low, mnt
}
