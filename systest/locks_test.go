package systest

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestFlock checks that flock(2) through the mount conflicts with other
// opens through the mount and with processes using the lower file directly,
// and that closing releases the lock.
func TestFlock(t *testing.T) {
	for _, mode := range []sievefs.PassthroughMode{sievefs.PassthroughAuto, sievefs.PassthroughOff} {
		t.Run(string(mode), func(t *testing.T) {
			v := fusetest.Mount(t, sievefs.Options{Passthrough: mode})
			fusetest.WriteFile(t, v.LowerPath("f"), []byte("data"))
			open := func(path string) *os.File {
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				return f
			}
			a, b, low := open(v.Path("f")), open(v.Path("f")), open(v.LowerPath("f"))
			if err := unix.Flock(int(a.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
				t.Fatalf("flock through the mount: %v", err)
			}
			if err := unix.Flock(int(b.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != unix.EWOULDBLOCK {
				t.Errorf("second exclusive flock through the mount: %v, want EWOULDBLOCK", err)
			}
			if err := unix.Flock(int(low.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != unix.EWOULDBLOCK {
				t.Errorf("shared flock on the lower file while the mount holds an exclusive one: %v, want EWOULDBLOCK", err)
			}
			// A blocking flock waits until the holder lets go.
			got := make(chan error, 1)
			go func() { got <- unix.Flock(int(b.Fd()), unix.LOCK_SH) }()
			select {
			case err := <-got:
				t.Fatalf("blocking flock returned while the lock was held: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
			a.Close()
			select {
			case err := <-got:
				if err != nil {
					t.Fatalf("blocking flock after the holder closed: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("blocking flock still waiting 5s after the holder closed")
			}
			if err := unix.Flock(int(low.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
				t.Errorf("shared flock on the lower file beside a shared one through the mount: %v", err)
			}
			if err := unix.Flock(int(b.Fd()), unix.LOCK_UN); err != nil {
				t.Fatal(err)
			}
		})
	}
}
