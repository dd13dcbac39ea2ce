package systest

// Helpers of the system tests that no other package needs.

import (
	"os"
	"strconv"
	"testing"

	"github.com/sievefs/sievefs/internal/fusetest"
)

// openFDs counts the descriptors this process holds.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
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
	if fusetest.RaceEnabled {
		return underRace
	}
	return normal
}

// statErr stats path as uid:gid (fusetest.AsCaller) and returns the error.
func statErr(t testing.TB, uid, gid uint32, path string) (err error) {
	t.Helper()
	fusetest.AsCaller(t, uid, gid, func() { _, err = os.Stat(path) })
	return err
}
