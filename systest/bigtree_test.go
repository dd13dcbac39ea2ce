package systest

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// bigTreeFiles is how many files TestBigTree makes: SIEVEFS_BIGTREE_FILES,
// else 200,000, or 30,000 under the race detector (which slows the daemon
// several times).
func bigTreeFiles(t *testing.T) int { return testSize(t, "SIEVEFS_BIGTREE_FILES", 200_000, 30_000) }

// TestBigTree creates, walks and reads a tree of many small files through a
// mount whose inode descriptor cache is far smaller than the tree, and
// checks that the daemon's descriptors stay bounded and that inodes the
// kernel forgets leave the inode table.
func TestBigTree(t *testing.T) {
	if testing.Short() {
		t.Skip("big tree skipped in -short mode")
	}
	const maxFDs = 1000
	const perDir = 1000
	n := bigTreeFiles(t)
	v := fusetest.Mount(t, sievefs.Options{MaxInodeFDs: maxFDs})
	if !v.Mount.Status().Passthrough.Active {
		t.Log("passthrough inactive: the daemon serves the data")
	}
	bound := maxFDs + 500
	baseFDs := openFDs(t)
	t.Logf("%d files, MaxInodeFDs %d, descriptors before: %d", n, maxFDs, baseFDs)

	// A sampler records the most descriptors the process held.
	var maxSeen atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			if c := int64(openFDs(t)); c > maxSeen.Load() {
				maxSeen.Store(c)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	defer func() {
		close(stop)
		sampler.Wait()
	}()

	content := func(i int) []byte { return []byte(fmt.Sprintf("file %d\n", i)) }
	path := func(i int) string {
		return filepath.Join(v.Mnt, fmt.Sprintf("d%04d", i/perDir), fmt.Sprintf("f%06d", i))
	}
	ndirs := (n + perDir - 1) / perDir
	for d := 0; d < ndirs; d++ {
		if err := os.Mkdir(filepath.Join(v.Mnt, fmt.Sprintf("d%04d", d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// parallel runs fn(i) for every file on 4 workers and stops at the
	// first error.
	parallel := func(what string, fn func(i int) error) {
		t.Helper()
		start := time.Now()
		var next atomic.Int64
		var failed atomic.Value
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for failed.Load() == nil {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					if err := fn(i); err != nil {
						failed.CompareAndSwap(nil, err)
					}
				}
			}()
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		st := v.Mount.Status().Counters
		t.Logf("%s: %v; inodes %d, inode descriptors %d, process descriptors %d (most %d)",
			what, time.Since(start).Round(time.Millisecond), st.Inodes, st.InodeFDs, openFDs(t), maxSeen.Load())
		if st.InodeFDs > maxFDs {
			t.Errorf("%s: inode table holds %d descriptors, over MaxInodeFDs %d", what, st.InodeFDs, maxFDs)
		}
	}

	parallel("create", func(i int) error { return os.WriteFile(path(i), content(i), 0o644) })

	start := time.Now()
	var files int
	err := filepath.WalkDir(v.Mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := os.Lstat(p); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	t.Logf("walk+stat: %v", time.Since(start).Round(time.Millisecond))
	if files != n {
		t.Errorf("walk found %d files, want %d", files, n)
	}

	parallel("read", func(i int) error {
		b, err := os.ReadFile(path(i))
		if err == nil && !bytes.Equal(b, content(i)) {
			err = fmt.Errorf("%s holds %q", path(i), b)
		}
		return err
	})

	if m := int(maxSeen.Load()); m > bound {
		t.Errorf("the process held up to %d descriptors, over %d (MaxInodeFDs + 500)", m, bound)
	}
	if c := openFDs(t); c > bound {
		t.Errorf("the process holds %d descriptors, over %d", c, bound)
	}

	// The kernel forgets unused inodes when asked to drop its caches; each
	// FORGET must take the inode out of the table.
	before := v.Mount.Status().Counters.Inodes
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Logf("not checking that forgotten inodes leave the table: %v", err)
		return
	}
	fusetest.Eventually(t, 20*time.Second, "the inode table to shrink after drop_caches", func() bool {
		return v.Mount.Status().Counters.Inodes < before/2
	})
	t.Logf("inodes after drop_caches: %d (before %d)", v.Mount.Status().Counters.Inodes, before)
}
