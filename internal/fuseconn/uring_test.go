package fuseconn_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/internal/fuseconn"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestURingServes mounts a file system that answers ENOSYS to everything
// with MountURing and checks that the kernel's requests come through the
// rings, not /dev/fuse: a LOOKUP gets the file system's answer, and the
// rings count it. Unmount ends Serve.
func TestURingServes(t *testing.T) {
	fusetest.RequireURing(t)
	mnt := t.TempDir()
	c, err := fuseconn.MountURing(mnt, fuse.NewDefaultRawFileSystem(), &fuse.MountOptions{Name: "fuseconntest", MaxWrite: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		c.Serve()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			if err := c.Unmount(); err != nil {
				t.Error(err)
			}
			<-done
		}
	})
	if err := c.WaitMount(); err != nil {
		t.Fatal(err)
	}
	before := c.RingRequests()
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(mnt, "x"), &st); !errors.Is(err, unix.ENOSYS) {
		t.Errorf("stat through a file system without LOOKUP: %v, want ENOSYS", err)
	}
	if after := c.RingRequests(); after <= before {
		t.Errorf("requests served through the rings: %d before the stat, %d after", before, after)
	}
	if err := c.Unmount(); err != nil {
		t.Fatal(err)
	}
	<-done
}
