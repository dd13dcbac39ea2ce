package systest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// memoryInodes is how many files TestMemoryPerCachedInode has the kernel
// cache: SIEVEFS_MEMORY_INODES, else 100,000, or 20,000 under the race
// detector.
func memoryInodes(t *testing.T) int { return testSize(t, "SIEVEFS_MEMORY_INODES", 100_000, 20_000) }

// maxBytesPerInode is what one cached inode may cost the daemon's heap: a
// million cached inodes must fit in 300 MB.
const maxBytesPerInode = 300

// TestMemoryPerCachedInode measures the daemon's heap per inode the kernel
// keeps cached (and the inode table therefore holds), checks that a million
// of them would fit in 300 MB, that descriptors stay bounded by
// MaxInodeFDs, and that the table and the heap let go of the inodes once the
// kernel forgets them (drop_caches).
//
// The mount runs in this process, so the heap measured is the daemon's plus
// the test's, which holds nothing per file between the measurements.
func TestMemoryPerCachedInode(t *testing.T) {
	if testing.Short() {
		t.Skip("memory measurement skipped in -short mode")
	}
	fusetest.RequireFuse(t)
	const (
		maxFDs = 1000
		perDir = 1000
		warm   = 2000 // files looked up before the baseline
	)
	n := memoryInodes(t)

	// The files are made on the lower tree directly: only the lookups go
	// through the mount.
	low := filepath.Join(t.TempDir(), "lower")
	dirOf := func(i int) string { return fmt.Sprintf("d%04d", i/perDir) }
	fileOf := func(i int) string { return filepath.Join(dirOf(i), fmt.Sprintf("f%07d", i)) }
	total := n + warm // files 0..warm-1 are the warm-up set
	for d := 0; d*perDir < total; d++ {
		if err := os.MkdirAll(filepath.Join(low, dirOf(d*perDir)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	forEach(t, 0, total, func(i int) error {
		fd, err := unix.Open(filepath.Join(low, fileOf(i)), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err == nil {
			err = unix.Close(fd)
		}
		return err
	})
	t.Logf("made %d files on the lower tree in %v", total, time.Since(start).Round(time.Millisecond))

	v := fusetest.MountLower(t, low, sievefs.Options{MaxInodeFDs: maxFDs})
	counters := func() sievefs.Counters { return v.Mount.Status().Counters }
	stat := func(i int) error {
		_, err := os.Lstat(filepath.Join(v.Mnt, fileOf(i)))
		return err
	}
	fds0 := openFDs(t)

	// Warm up: the server's request buffers and goroutines, and the maps'
	// first growth, are not per-inode costs.
	forEach(t, 0, warm, stat)
	heap0 := settledHeap()
	ino0 := counters().Inodes

	start = time.Now()
	forEach(t, warm, total, stat)
	elapsed := time.Since(start)
	heap1 := settledHeap()
	c1 := counters()
	fds1 := openFDs(t)

	added := c1.Inodes - ino0
	t.Logf("looked up %d files through the mount in %v; inode table %d -> %d, inode descriptors %d, process descriptors %d -> %d",
		n, elapsed.Round(time.Millisecond), ino0, c1.Inodes, c1.InodeFDs, fds0, fds1)
	if added < n {
		t.Errorf("the inode table grew by %d inodes, want at least %d (one per file looked up)", added, n)
	}
	if added <= 0 {
		t.FailNow()
	}
	growth := int64(heap1) - int64(heap0)
	perInode := float64(growth) / float64(added)
	t.Logf("heap %d -> %d bytes: %.1f bytes per cached inode (%d inodes; race detector %v); a million cached inodes: %.0f MB",
		heap0, heap1, perInode, added, fusetest.RaceEnabled, perInode)
	if perInode >= maxBytesPerInode {
		t.Errorf("%.1f bytes of heap per cached inode, want < %d (a million cached inodes in 300 MB)", perInode, maxBytesPerInode)
	}
	logHeapTop(t, 15)

	if d := fds1 - fds0; d >= maxFDs+100 {
		t.Errorf("process descriptors grew by %d (%d -> %d) with MaxInodeFDs %d, want < %d", d, fds0, fds1, maxFDs, maxFDs+100)
	}
	if c1.InodeFDs > maxFDs+1 { // the root's descriptor is pinned
		t.Errorf("the inode table holds %d descriptors, over MaxInodeFDs %d", c1.InodeFDs, maxFDs)
	}

	// The kernel forgets unused inodes when asked to drop its caches; the
	// table must let go of them and the heap must shrink back.
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Logf("not checking that forgotten inodes are released: %v", err)
		return
	}
	fusetest.Eventually(t, 30*time.Second, "the inode table to shrink after drop_caches", func() bool {
		return counters().Inodes <= ino0+n/10
	})
	// FORGETs may still be arriving: wait until the table stops shrinking.
	for last := -1; ; time.Sleep(200 * time.Millisecond) {
		cur := counters().Inodes
		if cur == last {
			break
		}
		last = cur
	}
	heap2 := settledHeap()
	c2 := counters()
	forgotten := c1.Inodes - c2.Inodes
	retained := int64(heap2) - int64(heap0)
	t.Logf("after drop_caches: inode table %d (forgot %d), inode descriptors %d, process descriptors %d; heap %d bytes, %d over the baseline (%.1f bytes per forgotten inode, %.0f%% of the growth)",
		c2.Inodes, forgotten, c2.InodeFDs, openFDs(t), heap2, retained,
		float64(retained)/float64(max(forgotten, 1)), 100*float64(retained)/float64(growth))
	// What the kernel forgot must not stay in the heap: at most a tenth of
	// the growth (a million forgotten inodes would otherwise keep tens of
	// MB for good).
	if retained > growth/10 {
		logHeapTop(t, 10)
		t.Errorf("after the kernel forgot %d inodes the heap is still %d bytes over the baseline (%.0f%% of the %d bytes they took; %.1f bytes per forgotten inode), want at most 10%%",
			forgotten, retained, 100*float64(retained)/float64(growth), growth, float64(retained)/float64(max(forgotten, 1)))
	}
}

// settledHeap collects garbage and returns the bytes of live heap.
func settledHeap() uint64 {
	var ms runtime.MemStats
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// logHeapTop writes a heap profile and logs the top lines of `go tool pprof
// -top` (in-use bytes by allocation site).
func logHeapTop(t *testing.T, lines int) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Logf("no heap profile: %v", err)
		return
	}
	prof := filepath.Join(t.TempDir(), fmt.Sprintf("heap-%d.pprof", time.Now().UnixNano()))
	f, err := os.Create(prof)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		t.Logf("no heap profile: %v", err)
		return
	}
	f.Close()
	out, err := exec.Command(gobin, "tool", "pprof", "-top", "-lines", "-sample_index=inuse_space", prof).CombinedOutput()
	if err != nil {
		t.Logf("go tool pprof: %v\n%s", err, out)
		return
	}
	all := strings.Split(strings.TrimSpace(string(out)), "\n")
	// Keep the header, the totals and the first lines of the table.
	for i, l := range all {
		if strings.Contains(l, "flat%") {
			all = append(all[:0:0], all[:min(len(all), i+1+lines)]...)
			break
		}
	}
	t.Logf("heap profile (in use):\n%s", strings.Join(all, "\n"))
}

// forEach runs fn(i) for i in [from, to) on 4 workers and fails the test at
// the first error.
func forEach(t *testing.T, from, to int, fn func(i int) error) {
	t.Helper()
	var next atomic.Int64
	next.Store(int64(from))
	var failed atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for failed.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= to {
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
		t.Fatal(err)
	}
}

// TestMemoryDaemonRSS measures what the kernel sees the daemon use per
// cached inode: the resident set of a separate sievefs process before and
// after the kernel caches n inodes through it. It includes what the garbage
// collector has not yet returned (with GOGC=100 the heap may grow to twice
// the live heap before a collection), so it is logged next to the live-heap
// figure of TestMemoryPerCachedInode rather than held to its bound.
func TestMemoryDaemonRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("memory measurement skipped in -short mode")
	}
	fusetest.RequireFuse(t)
	const perDir = 1000
	n := memoryInodes(t)
	lower, mnt := crashDirs(t)
	fileOf := func(i int) string { return filepath.Join(fmt.Sprintf("d%04d", i/perDir), fmt.Sprintf("f%07d", i)) }
	for d := 0; d*perDir < n; d++ {
		if err := os.Mkdir(filepath.Join(lower, fmt.Sprintf("d%04d", d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	forEach(t, 0, n, func(i int) error {
		fd, err := unix.Open(filepath.Join(lower, fileOf(i)), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err == nil {
			err = unix.Close(fd)
		}
		return err
	})
	d := fusetest.StartMount(t, lower, mnt, "--max-backing", "100")
	pid := d.Cmd.Process.Pid
	// Warm up the server as TestMemoryPerCachedInode does.
	forEach(t, 0, min(n, 2000), func(i int) error {
		_, err := os.Lstat(filepath.Join(mnt, fileOf(i)))
		return err
	})
	rss0, _ := procMemory(t, pid)
	forEach(t, 0, n, func(i int) error {
		_, err := os.Lstat(filepath.Join(mnt, fileOf(i)))
		return err
	})
	rss1, hwm := procMemory(t, pid)
	t.Logf("daemon resident set %d -> %d KiB (peak %d KiB) for %d cached inodes: %.0f bytes per cached inode (peak: %.0f); a million: %.0f MB",
		rss0>>10, rss1>>10, hwm>>10, n, float64(rss1-rss0)/float64(n), float64(hwm-rss0)/float64(n), float64(rss1-rss0)/float64(n))
	d.Signal(t, syscall.SIGTERM)
	if code := d.Wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d on SIGTERM, want 0; stderr:\n%s", code, d.Stderr)
	}
}

// procMemory returns the resident set and its peak (VmRSS, VmHWM) of process
// pid, in bytes.
func procMemory(t *testing.T, pid int) (rss, hwm int64) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			hwm = v << 10
		}
	}
	return rss, hwm
}
