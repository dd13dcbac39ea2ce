package sievefs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/fuseconn"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestTransportDev runs a view on sievefs's own /dev/fuse loop (transport
// dev) whatever SIEVEFS_TEST_TRANSPORT says: see testTransport.
func TestTransportDev(t *testing.T) { testTransport(t, sievefs.TransportDev) }

// TestTransportURing runs a view on FUSE over io_uring (transport uring):
// see testTransport. It skips where the kernel lacks it; it turns the fuse
// module's enable_uring on for the test if it is off.
func TestTransportURing(t *testing.T) {
	fusetest.RequireURing(t)
	testTransport(t, sievefs.TransportURing)
}

// testTransport checks a view served by the transport tr: files made,
// written, read (served by the daemon), listed, renamed and removed through
// it reach the lower tree; a policy reload's notifications drop what the
// kernel cached for a day; a passthrough open registers its backing file
// through the connection's ioctl and sends the daemon no READ; Unmount
// leaves nothing mounted, the loop ended and no io_uring open.
func testTransport(t *testing.T, tr sievefs.Transport) {
	rings := ioURings(t)
	v := fusetest.Mount(t, sievefs.Options{
		Transport: tr,
		Cache:     sievefs.CacheAlways,
		Rules:     []filter.Rule{},
	})

	data := []byte("through the transport\n")
	fusetest.WriteFile(t, v.Path("a"), data)
	if got := fusetest.ReadFile(t, v.LowerPath("a")); !bytes.Equal(got, data) {
		t.Fatalf("lower a holds %q, want %q", got, data)
	}
	if got := fusetest.ReadFile(t, v.Path("a")); !bytes.Equal(got, data) {
		t.Fatalf("a reads %q through the mount, want %q", got, data)
	}
	if err := os.Rename(v.Path("a"), v.Path("b")); err != nil {
		t.Fatal(err)
	}
	if names := fusetest.ListDir(t, v.Mnt); !slices.Equal(names, []string{"b"}) {
		t.Fatalf("mount lists %q after rename, want [b]", names)
	}
	if _, err := os.Stat(v.LowerPath("b")); err != nil {
		t.Fatalf("renamed file missing from the lower tree: %v", err)
	}
	if err := os.Remove(v.Path("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(v.LowerPath("b")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lower b after unlink: %v, want ENOENT", err)
	}

	t.Run("notify", func(t *testing.T) {
		fusetest.WriteFile(t, v.LowerPath("secret"), []byte("x"))
		if _, err := os.Stat(v.Path("secret")); err != nil {
			t.Fatal(err)
		}
		// The kernel may keep the entry for a day (CacheAlways): only the
		// reload's notifications make it ask again.
		rules := sievefs.PolicyRules(t, "hide.yaml", []byte("rules:\n  - hide: [secret]\n"))
		if err := v.Mount.SetRules(rules); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(v.Path("secret")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat of a name hidden by a reload: %v, want ENOENT", err)
		}
		if err := v.Mount.SetRules([]filter.Rule{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("daemon read", func(t *testing.T) {
		// Passthrough off: every READ is served by the daemon, in
		// replies up to max_write (1 MiB) long.
		d := fusetest.Mount(t, sievefs.Options{Transport: tr, Passthrough: sievefs.PassthroughOff, Cache: sievefs.CacheNever})
		big := fusetest.RandomBytes(t, 3<<20+123)
		fusetest.WriteFile(t, d.Path("big"), big)
		if got := fusetest.ReadFile(t, d.LowerPath("big")); !bytes.Equal(got, big) {
			t.Fatal("lower file differs from what was written through the mount")
		}
		before := d.Mount.Status().Counters.DaemonReads
		if got := fusetest.ReadFile(t, d.Path("big")); !bytes.Equal(got, big) {
			t.Fatal("daemon-served read differs from the lower file")
		}
		if after := d.Mount.Status().Counters.DaemonReads; after <= before {
			t.Errorf("no READ reached the daemon with passthrough off (%d before, %d after)", before, after)
		}
	})

	t.Run("passthrough", func(t *testing.T) {
		fusetest.RequirePassthrough(t, v.Mount)
		big := fusetest.RandomBytes(t, 4<<20)
		fusetest.WriteFile(t, v.LowerPath("big"), big)
		before := v.Mount.Status().Counters
		f, err := os.Open(v.Path("big"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		got := make([]byte, len(big))
		if _, err := f.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, big) {
			t.Fatal("passthrough read differs from the lower file")
		}
		st := v.Mount.Status()
		if backingFor(st, v.LowerPath("big")) == nil {
			t.Errorf("no backing file listed for big while it is open: %+v", st.BackingFiles)
		}
		if st.Counters.BackingRegistered <= before.BackingRegistered {
			t.Errorf("backing files registered: %d before the open, %d after", before.BackingRegistered, st.Counters.BackingRegistered)
		}
		if st.Counters.DaemonReads != before.DaemonReads {
			t.Errorf("%d READs reached the daemon for a passthrough file", st.Counters.DaemonReads-before.DaemonReads)
		}
	})

	if err := v.Mount.Unmount(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.Mount.Done():
	default:
		t.Error("Unmount returned before the loop ended")
	}
	mounts, err := sievefs.ReadMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	for _, mi := range mounts {
		if mi.Mountpoint == v.Mnt {
			t.Errorf("%s still mounted after Unmount: %+v", v.Mnt, mi)
		}
	}
	if n := ioURings(t); n != rings {
		t.Errorf("%d io_uring instances open after Unmount, %d before the mount", n, rings)
	}
}

// ioURings returns the number of io_uring instances the process has open.
func ioURings(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && target == "anon_inode:[io_uring]" {
			n++
		}
	}
	return n
}

// TestTransportRefused checks that a transport sievefs does not know is
// refused before anything is mounted.
func TestTransportRefused(t *testing.T) {
	fusetest.RequireFuse(t)
	_, err := sievefs.MountView(t.TempDir(), t.TempDir(), sievefs.Options{Transport: "carrier-pigeon"})
	if !errors.Is(err, sievefs.ErrMountOption) {
		t.Fatalf("mount with transport carrier-pigeon: %v, want ErrMountOption", err)
	}
}

// TestTransportDevUnmountBusy unmounts a dev-transport view with a file
// still open: Unmount detaches it, aborts the connection after the grace
// and returns once the loop has ended; the open file then fails.
func TestTransportDevUnmountBusy(t *testing.T) { testUnmountBusy(t, sievefs.TransportDev) }

// TestTransportURingUnmountBusy does the same on FUSE over io_uring: the
// rings' loops end with the aborted connection.
func TestTransportURingUnmountBusy(t *testing.T) {
	fusetest.RequireURing(t)
	testUnmountBusy(t, sievefs.TransportURing)
}

// testUnmountBusy unmounts a view served by tr with a file still open.
func testUnmountBusy(t *testing.T, tr sievefs.Transport) {
	v := fusetest.Mount(t, sievefs.Options{Transport: tr, UnmountGrace: 100 * time.Millisecond})
	fusetest.WriteFile(t, v.LowerPath("f"), []byte("x"))
	f, err := os.Open(v.Path("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := v.Mount.Unmount(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.Mount.Done():
	default:
		t.Fatal("Unmount returned before the loop ended")
	}
	// statfs is never answered from the kernel's caches.
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); !errors.Is(err, unix.ENOTCONN) {
		t.Errorf("statfs of a file open on an aborted connection: %v, want ENOTCONN", err)
	}
	mounts, err := sievefs.ReadMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	for _, mi := range mounts {
		if mi.Mountpoint == v.Mnt {
			t.Errorf("%s still mounted after Unmount", v.Mnt)
		}
	}
}

// TestTransportURingRefused checks that where the fuse module's
// enable_uring is off, a mount with transport uring fails with
// ErrMountOption and leaves nothing mounted, rather than falling back.
func TestTransportURingRefused(t *testing.T) {
	fusetest.RequireFuse(t)
	b, err := os.ReadFile(fuseconn.EnableURingParam)
	if err != nil || string(bytes.TrimSpace(b)) != "N" {
		t.Skipf("needs enable_uring present and off (%q, %v)", b, err)
	}
	mnt := t.TempDir()
	_, err = sievefs.MountView(t.TempDir(), mnt, sievefs.Options{Transport: sievefs.TransportURing})
	if !errors.Is(err, sievefs.ErrMountOption) {
		t.Fatalf("mount with transport uring and enable_uring off: %v, want ErrMountOption", err)
	}
	mounts, err := sievefs.ReadMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	for _, mi := range mounts {
		if mi.Mountpoint == mnt {
			t.Errorf("%s mounted after a refused mount", mnt)
		}
	}
}
