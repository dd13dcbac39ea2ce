package iouring

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// newRing sets up a ring for a test, skipping where io_uring is not allowed
// (a kernel without it, or io_uring_disabled set).
func newRing(t *testing.T, entries uint32) *Ring {
	t.Helper()
	r, err := New(entries)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("io_uring not available: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// TestNop submits NOPs through a ring with 128-byte entries and reaps their
// completions, each carrying its entry's user data; a full submission ring
// refuses another entry until the kernel has consumed the queued ones.
func TestNop(t *testing.T) {
	r := newRing(t, 4)
	for i := range 4 {
		if err := r.Queue(func(s *SQE) { s.Opcode = OpNop; s.UserData = uint64(100 + i) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Queue(func(s *SQE) { s.Opcode = OpNop }); err == nil {
		t.Fatal("a fifth entry was queued in a ring of 4")
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	var got []CQE
	for len(got) < 4 {
		var err error
		if got, err = r.Wait(uint32(4-len(got)), got); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 4 {
		t.Fatalf("%d completions, want 4", len(got))
	}
	for i, c := range got {
		if c.UserData != uint64(100+i) || c.Res != 0 {
			t.Errorf("completion %d: %+v, want user data %d, result 0", i, c, 100+i)
		}
	}
	// The ring is free again.
	if err := r.Queue(func(s *SQE) { s.Opcode = OpNop; s.UserData = 7 }); err != nil {
		t.Fatal(err)
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	got, err := r.Wait(1, nil)
	if err != nil || len(got) != 1 || got[0].UserData != 7 {
		t.Fatalf("after refill: %+v, %v; want one completion with user data 7", got, err)
	}
}

// TestURingCmdRefused submits a URING_CMD on a descriptor that does not
// take commands (a pipe): the kernel answers with an error completion, the
// path by which a refused FUSE registration shows.
func TestURingCmdRefused(t *testing.T) {
	r := newRing(t, 2)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if err := r.Queue(func(s *SQE) { s.Opcode = OpURingCmd; s.Fd = int32(p[0]); s.CmdOp = 1; s.UserData = 9 }); err != nil {
		t.Fatal(err)
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	got, err := r.Wait(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].UserData != 9 || got[0].Res >= 0 {
		t.Fatalf("completions %+v, want one error for user data 9", got)
	}
}
