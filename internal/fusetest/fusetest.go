// Package fusetest mounts real sievefs views for tests. Every mount lives in
// the test's temporary directory and is unmounted by t.Cleanup, also when the
// test fails.
//
// It also holds the helpers the tests of several packages share (the root
// package's, systest's and each built-in filter's in filter/<name>): the
// sievefs binary run as a daemon, helper processes, lower trees, rules on a
// mount, callers acting as other users, snapshots and a FUSE request
// counter. A test package that starts helper processes (RunHelper, Beside,
// RunAs) or the sievefs binary has
//
//	func TestMain(m *testing.M) { fusetest.Main(m) }
package fusetest

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sievefs/sievefs"
)

// View is a mounted sievefs view for a test.
type View struct {
	Lower string // the lower directory
	Mnt   string // the mountpoint
	Mount *sievefs.Mount
}

// Mount mounts a view of a new empty lower directory (see TempLower).
func Mount(t testing.TB, opts sievefs.Options) *View {
	t.Helper()
	return MountLower(t, TempLower(t), opts)
}

// MountLower mounts a view of an existing lower directory.
func MountLower(t testing.TB, low string, opts sievefs.Options) *View {
	t.Helper()
	RequireFuse(t)
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if opts.Transport == "" {
		opts.Transport = sievefs.Transport(os.Getenv(TransportEnv))
	}
	if opts.Transport == sievefs.TransportURing {
		RequireURing(t)
	}
	if opts.Logger == nil && testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	m, err := sievefs.MountView(low, mnt, opts)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return &View{Lower: low, Mnt: mnt, Mount: m}
}

// TransportEnv names the environment variable that sets the transport of
// every view Mount and MountLower make without one (go-fuse, dev or
// uring), so that the same tests run against each.
const TransportEnv = "SIEVEFS_TEST_TRANSPORT"

// Path returns name inside the mount.
func (v *View) Path(name string) string { return filepath.Join(v.Mnt, name) }

// LowerPath returns name inside the lower directory.
func (v *View) LowerPath(name string) string { return filepath.Join(v.Lower, name) }

// RequireFuse skips the test unless it runs as root with /dev/fuse.
func RequireFuse(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount FUSE")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
}

// MountFlags returns the flags of the mount on mnt as /proc/self/mountinfo
// shows them (rw, nosuid, nodev, noexec, relatime, …).
func MountFlags(t testing.TB, mnt string) []string {
	t.Helper()
	mounts, err := sievefs.ReadMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.Mountpoint == mnt {
			return strings.Split(m.MountOptions, ",")
		}
	}
	t.Fatalf("nothing mounted on %s", mnt)
	return nil
}
