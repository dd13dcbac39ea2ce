package sievefs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// listings counts the READDIR and READDIRPLUS requests a mount served.
func listings(m *sievefs.Mount) uint64 {
	return m.Requests("readdir") + m.Requests("readdirplus")
}

// listedAfter lists dir and returns its sorted names and how many listing
// requests reached the daemon meanwhile.
func listedAfter(t *testing.T, m *sievefs.Mount, dir string) ([]string, uint64) {
	t.Helper()
	before := listings(m)
	names := fusetest.ListDir(t, dir)
	return names, listings(m) - before
}

// TestListingCache checks that the kernel keeps directory listings: a
// second listing reaches no daemon, and changes through the mount and
// underneath it (after the attribute timeout) still show; with caching off
// or a listing that depends on the caller, every listing reaches the daemon.
func TestListingCache(t *testing.T) {
	t.Run("auto", func(t *testing.T) {
		v := fusetest.Mount(t, sievefs.Options{})
		for i := range 50 {
			fusetest.LayTree(t, v.Lower, fmt.Sprintf("d/f%02d", i))
		}
		if names, n := listedAfter(t, v.Mount, v.Path("d")); len(names) != 50 || n == 0 {
			t.Fatalf("first listing: %d names, %d requests; want 50 names from the daemon", len(names), n)
		}
		if names, n := listedAfter(t, v.Mount, v.Path("d")); len(names) != 50 || n != 0 {
			t.Errorf("second listing: %d names, %d requests; want 50 names from the kernel's cache", len(names), n)
		}
		fusetest.WriteFile(t, v.Path("d/made-through-the-mount"), nil)
		if names, _ := listedAfter(t, v.Mount, v.Path("d")); !fusetest.HasName(names, "made-through-the-mount") {
			t.Errorf("a file created through the mount is missing from the next listing")
		}
		time.Sleep(10 * time.Millisecond) // a later mtime than the last change
		fusetest.Beside(t, "append", filepath.Join(v.Lower, "d", "made-underneath"), "")
		time.Sleep(1500 * time.Millisecond) // past the attribute timeout
		if names, _ := listedAfter(t, v.Mount, v.Path("d")); !fusetest.HasName(names, "made-underneath") {
			t.Errorf("a file created underneath the mount is missing from a listing after the attribute timeout")
		}
		if err := os.Remove(v.Path("d/f00")); err != nil {
			t.Fatal(err)
		}
		if names, _ := listedAfter(t, v.Mount, v.Path("d")); fusetest.HasName(names, "f00") {
			t.Errorf("a file removed through the mount is still listed")
		}
	})
	t.Run("never", func(t *testing.T) {
		v := fusetest.Mount(t, sievefs.Options{Cache: sievefs.CacheNever})
		fusetest.LayTree(t, v.Lower, "d/f")
		listedAfter(t, v.Mount, v.Path("d"))
		if _, n := listedAfter(t, v.Mount, v.Path("d")); n == 0 {
			t.Errorf("with --cache never a second listing was served from the kernel's cache")
		}
	})
	t.Run("caller-dependent", func(t *testing.T) {
		low := fusetest.NewLower(t)
		fusetest.LayTree(t, low, "private/x", "open/y")
		chain := fusetest.RulesOf(t, filter.Rule{
			Name: "hide-private", Filter: hide.New(fusetest.Globs("private/x")),
			When: filter.Condition{Unless: &filter.Callers{Uids: []uint32{0}}},
		})
		v := fusetest.MountFiltered(t, low, chain, false)
		for _, dir := range []string{"private", "open"} {
			listedAfter(t, v.Mount, v.Path(dir))
		}
		if _, n := listedAfter(t, v.Mount, v.Path("private")); n == 0 {
			t.Errorf("a listing that depends on the caller was served from the kernel's cache")
		}
		if _, n := listedAfter(t, v.Mount, v.Path("open")); n != 0 {
			t.Errorf("a listing no conditional rule covers reached the daemon %d times, want the kernel's cache", n)
		}
	})
}
