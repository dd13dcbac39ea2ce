package fusetest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// LowerEnv names an environment variable: when set to a directory, every
// lower tree the helpers make (Mount, TempLower) is a new directory inside
// it instead of inside the test's temporary directory. Point it at a
// distributed filesystem (internal/testenv's gluster.sh or sshfs.sh) to run
// a package's mount tests over it.
const LowerEnv = "SIEVEFS_TEST_LOWER"

// TempLower returns a new empty directory for a lower tree: inside
// $SIEVEFS_TEST_LOWER when it is set, removed when the test ends, else
// inside the test's temporary directory.
func TempLower(t testing.TB) string {
	t.Helper()
	base := os.Getenv(LowerEnv)
	if base == "" {
		low := filepath.Join(t.TempDir(), "lower")
		if err := os.Mkdir(low, 0o755); err != nil {
			t.Fatal(err)
		}
		return low
	}
	low, err := os.MkdirTemp(base, "lower-")
	if err != nil {
		t.Fatalf("%s: %v", LowerEnv, err)
	}
	if err := os.Chmod(low, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(low); err != nil {
			t.Errorf("remove lower %s: %v", low, err)
		}
	})
	return low
}

// SSHFSLower mounts an sshfs view of a new local directory (sshfs in
// passive mode over OpenSSH's sftp-server: no sshd, no network) and returns
// its mountpoint, unmounted with everything the script started when the
// test ends. It skips the test where sshfs or sftp-server is missing.
func SSHFSLower(t testing.TB) string {
	t.Helper()
	RequireFuse(t)
	return testenvLower(t, "sshfs.sh")
}

// testenvLower runs internal/testenv's script up in a new state directory,
// returns what it prints and runs it down when the test ends. Exit status
// 77 skips the test with the reason the script gives.
func testenvLower(t testing.TB, script string) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(self), "..", "testenv", script)
	state := t.TempDir()
	var stdout, stderr bytes.Buffer
	up := exec.Command("bash", path, "up", state)
	up.Stdout, up.Stderr = &stdout, &stderr
	err := up.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 77 {
		t.Skip(strings.TrimSpace(stderr.String()))
	}
	// Down runs even after a failed up: it undoes what up got done.
	t.Cleanup(func() {
		if out, err := exec.Command("bash", path, "down", state).CombinedOutput(); err != nil {
			t.Errorf("%s down: %v\n%s", script, err, out)
		}
	})
	if err != nil {
		t.Fatalf("%s up: %v\n%s", script, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}
