package sievefs

import (
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/internal/lower"
)

// TestDirFDsBound checks the directory descriptor cache: it holds at most
// max descriptors, closes the least recently used idle one first, never
// one a READDIR holds, and a handle that lost its descriptor gets a new
// one with its listing state reset.
func TestDirFDsBound(t *testing.T) {
	c := dirFDs{max: 2}
	tree, err := lower.Open(t.TempDir(), lower.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	open := func() (*lower.File, error) { return tree.OpenDir(tree.Root()) }
	hs := make([]*dirHandle, 4)
	for i := range hs {
		hs[i] = &dirHandle{}
	}
	use := func(d *dirHandle) {
		t.Helper()
		if err := c.acquire(d, open); err != nil {
			t.Fatal(err)
		}
		d.off = 42
		c.release(d)
	}
	use(hs[0])
	use(hs[1])
	use(hs[0]) // hs[1] is now the least recently used
	use(hs[2])
	if hs[1].dir != nil || hs[0].dir == nil || hs[2].dir == nil {
		t.Errorf("after 3 handles in a cache of 2: open %v %v %v, want the least recently used (1) closed", hs[0].dir != nil, hs[1].dir != nil, hs[2].dir != nil)
	}
	// A handle in use is not closed to make room.
	if err := c.acquire(hs[0], open); err != nil {
		t.Fatal(err)
	}
	use(hs[3])
	if hs[0].dir == nil {
		t.Error("a handle in use lost its descriptor")
	}
	c.release(hs[0])
	if got := c.held(); got > 2 {
		t.Errorf("%d descriptors held, want at most max", got)
	}
	hs[1].off = 7
	if err := c.acquire(hs[1], open); err != nil {
		t.Fatal(err)
	}
	if hs[1].dir == nil || hs[1].off != 0 {
		t.Errorf("reopened handle: open %v off %d, want a descriptor and the listing from 0", hs[1].dir != nil, hs[1].off)
	}
	c.release(hs[1])
	for _, d := range hs {
		c.forget(d)
	}
	if c.held() != 0 || c.evicted.Load() == 0 {
		t.Errorf("after forgetting all: %d held, %d evicted", c.held(), c.evicted.Load())
	}
}

// TestHeldFDsShares checks that one user's share and the pool are kept.
func TestHeldFDsShares(t *testing.T) {
	h := newHeldFDs(5, 3)
	for i := range 3 {
		if e := h.take(1000); e != 0 {
			t.Fatalf("take %d for uid 1000: %v", i, e)
		}
	}
	if e := h.take(1000); e != syscall.EMFILE {
		t.Errorf("uid 1000 over its share: %v, want EMFILE", e)
	}
	if e := h.take(1001); e != 0 {
		t.Errorf("uid 1001 within its share: %v", e)
	}
	h.take(1002)
	if e := h.take(1003); e != syscall.ENFILE {
		t.Errorf("uid 1003 with the pool used up: %v, want ENFILE", e)
	}
	h.give(1000)
	if e := h.take(1003); e != 0 {
		t.Errorf("uid 1003 after a descriptor was given back: %v", e)
	}
	if total, users := h.usage(); total != 5 || users != 4 {
		t.Errorf("usage %d by %d users, want 5 by 4", total, users)
	}
	if h.refused.Load() != 2 {
		t.Errorf("refused %d, want 2", h.refused.Load())
	}
}

// TestFDBudgetSplit checks the split of the default limit here.
func TestFDBudgetSplit(t *testing.T) {
	b := newFDBudget(20000, 0)
	if b.Inodes != 10000 || b.Reserve != 512 || b.Dirs != 1186 || b.Held != 8302 || b.PerUser != 2075 {
		t.Errorf("budget of 20000: %+v", b)
	}
	if sum := b.Inodes + b.Reserve + b.Dirs + b.Held; sum != b.Total {
		t.Errorf("the parts add up to %d, not %d", sum, b.Total)
	}
}
