package systest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestSSHFSLower runs a view over an sshfs mount (a FUSE lower, as a
// distributed filesystem's client is): everyday operations and a filter
// work with a descriptor budget far smaller than the tree, an open file
// stays readable once unlinked, and status says the lower is remote and
// that the watch asked for cannot see other hosts' changes (so the kernel
// caches for auto's 1 s).
func TestSSHFSLower(t *testing.T) {
	low := fusetest.SSHFSLower(t)
	rules := fusetest.RulesOf(t, filter.Rule{Filter: hide.New(fusetest.Globs("**/secret*"))})
	v := fusetest.MountLower(t, low, sievefs.Options{Rules: rules, Cache: sievefs.CacheWatch, MaxFDs: 64})

	const n = 120
	if err := os.Mkdir(v.Path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		write(t, v.Path(fmt.Sprintf("d/f%d", i)), fmt.Sprint(i))
	}
	write(t, filepath.Join(low, "d/secret"), "hidden") // the view may not make it
	for i := range n {                                 // twice the inode table's share: most are reopened
		p := v.Path(fmt.Sprintf("d/f%d", i))
		if got, err := os.ReadFile(p); err != nil || string(got) != fmt.Sprint(i) {
			t.Fatalf("read %s: %q, %v", p, got, err)
		}
	}
	names, err := os.ReadDir(v.Path("d"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != n {
		t.Errorf("listing has %d entries, want %d (secret hidden)", len(names), n)
	}
	if _, err := os.Stat(v.Path("d/secret")); !os.IsNotExist(err) {
		t.Errorf("stat of a hidden file: %v, want ENOENT", err)
	}
	if _, err := os.Stat(filepath.Join(low, "d/secret")); err != nil {
		t.Errorf("the hidden file is not in the lower tree: %v", err)
	}

	// Rename, symlink, chmod, and an open file unlinked.
	if err := os.Rename(v.Path("d/f0"), v.Path("moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("moved", v.Path("link")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(v.Path("link")); err != nil || string(got) != "0" {
		t.Errorf("read through a symlink: %q, %v", got, err)
	}
	if err := os.Chmod(v.Path("moved"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(low, "moved")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("chmod through the view: %v, %v", st, err)
	}
	f, err := os.Open(v.Path("d/f1"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(v.Path("d/f1")); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < n; i++ { // evict what can be evicted
		if _, err := os.Stat(v.Path(fmt.Sprintf("d/f%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 8)
	if k, err := f.ReadAt(buf, 0); !bytes.Equal(buf[:k], []byte("1")) {
		t.Errorf("read of an unlinked open file: %q, %v", buf[:k], err)
	}
	if _, err := f.Stat(); err != nil {
		t.Errorf("fstat of an unlinked open file: %v", err)
	}

	st := v.Mount.Status()
	if st.LowerFS.Type != "fuse" || !st.LowerFS.Remote {
		t.Errorf("lower_fs %+v, want type fuse, remote", st.LowerFS)
	}
	if st.Counters.InodeFDs > st.Descriptors.InodeMax {
		t.Errorf("the inode table holds %d descriptors, past its share %d", st.Counters.InodeFDs, st.Descriptors.InodeMax)
	}
	c := st.Cache
	if c.Watch || !c.Remote || c.TimeoutSeconds != 1 || !strings.Contains(c.Reason, "other hosts") {
		t.Errorf("cache %+v, want not watched, remote, 1 s, a reason naming other hosts", c)
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
