package systest

// What a client saw acknowledged survives the daemon's death: SIGKILL in the
// middle of a write loop, and SIGTERM (unmount) in the middle of heavy use.
// The daemon runs as a separate process (fusetest.StartMount): the test
// process is the client, and nothing here maps a file of the mount.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
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

// daemonModes are the data paths the crash tests run in: passthrough (the
// default, when the kernel offers it) and daemon-served.
var daemonModes = []struct {
	name  string
	flags []string
	// passthrough is what the daemon's "mounted" line must say; nil when
	// either is acceptable (auto mode without kernel support).
	passthrough *bool
}{
	{name: "Passthrough"},
	{name: "DaemonServed", flags: []string{"--passthrough", "off"}, passthrough: new(false)},
}

// crashDirs makes a lower directory and a mountpoint in separate temporary
// directories.
func crashDirs(t *testing.T) (lower, mnt string) {
	t.Helper()
	lower = filepath.Join(t.TempDir(), "lower")
	mnt = filepath.Join(t.TempDir(), "mnt")
	for _, d := range []string{lower, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return lower, mnt
}

// daemonUsesPassthrough waits for the daemon's "mounted" log line and
// returns whether it says passthrough=true.
func daemonUsesPassthrough(t *testing.T, d *fusetest.Daemon) bool {
	t.Helper()
	fusetest.Eventually(t, 5*time.Second, "the daemon's 'mounted' log line", func() bool {
		return strings.Contains(d.Stderr.String(), "msg=mounted")
	})
	return strings.Contains(d.Stderr.String(), "passthrough=true")
}

// detachDeadMount makes sure nothing stays mounted on mnt once the test ends,
// also when it fails before unmounting the dead mount itself. It must be
// registered after fusetest.StartMount, so that it runs before the daemon's
// cleanup (which reports a mount left behind).
func detachDeadMount(t *testing.T, mnt string) {
	t.Cleanup(func() {
		if !fusetest.SievefsMounted(mnt) {
			return
		}
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Logf("umount %s: %v; detaching it", mnt, err)
			if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
				t.Errorf("umount -l %s: %v", mnt, err)
			}
		}
	})
}

// splitmix64 is a fast 64-bit mixer.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// pattern fills buf with the bytes that belong at offset off of the file
// numbered id: a function of both, so that data written at the wrong offset
// or into the wrong file is caught.
func pattern(id uint64, off int64, buf []byte) {
	var w uint64
	for i := range buf {
		p := off + int64(i)
		if i == 0 || p&7 == 0 {
			w = splitmix64(id<<40 ^ uint64(p>>3))
		}
		buf[i] = byte(w >> (8 * (p & 7)))
	}
}

// checkPattern compares data, read from offset off of file id, with its
// pattern and describes the first difference.
func checkPattern(id uint64, off int64, data []byte) error {
	want := make([]byte, len(data))
	pattern(id, off, want)
	if bytes.Equal(data, want) {
		return nil
	}
	i := 0
	for data[i] == want[i] {
		i++
	}
	j := len(data)
	for data[j-1] == want[j-1] {
		j--
	}
	return fmt.Errorf("bytes %d..%d differ from what was written (first: %#02x, want %#02x)",
		off+int64(i), off+int64(j), data[i], want[i])
}

// span is a byte range of a file.
type span struct{ off, n int64 }

// ackedFile is what a client saw acknowledged for one file: byte ranges with
// the file's pattern.
type ackedFile struct {
	name  string
	id    uint64
	spans []span
}

func (f *ackedFile) ack(off, n int64) {
	if n <= 0 {
		return
	}
	if k := len(f.spans); k > 0 && f.spans[k-1].off+f.spans[k-1].n == off {
		f.spans[k-1].n += n
		return
	}
	f.spans = append(f.spans, span{off, n})
}

// bytes returns how many bytes were acknowledged.
func (f *ackedFile) bytes() (n int64) {
	for _, s := range f.spans {
		n += s.n
	}
	return n
}

// verify checks the acknowledged ranges against the lower file.
func (f *ackedFile) verify(lowerDir string) error {
	data, err := os.ReadFile(filepath.Join(lowerDir, f.name))
	if err != nil {
		return err
	}
	for _, s := range f.spans {
		if s.off+s.n > int64(len(data)) {
			return fmt.Errorf("%s: %d bytes long, but bytes %d..%d were acknowledged", f.name, len(data), s.off, s.off+s.n)
		}
		if err := checkPattern(f.id, s.off, data[s.off:s.off+s.n]); err != nil {
			return fmt.Errorf("%s: %v", f.name, err)
		}
	}
	return nil
}

// crashWriter appends records to one file (O_APPEND) and pwrites them into
// segment files it creates one after another, through the mount, and records
// what was acknowledged: in fsync mode, data whose write and a later fsync
// succeeded; otherwise data whose write() returned.
type crashWriter struct {
	mnt   string
	fsync bool
	rng   *rand.Rand

	files   []*ackedFile
	records atomic.Int64 // records acknowledged
	dead    atomic.Bool  // set by the test once the daemon is gone
	// recordsAfterDeath counts records acknowledged after dead was set.
	recordsAfterDeath atomic.Int64
	err               error // what stopped the writer
}

const (
	segRecords = 16   // records per segment file
	segRecSize = 3001 // size of a segment record: not page-aligned
)

// run writes until stop is closed or an operation fails.
func (w *crashWriter) run(stop <-chan struct{}) {
	var logFD, segFD = -1, -1
	defer func() {
		// Errors of close on a dead mount do not matter: only what was
		// acknowledged before counts.
		if logFD >= 0 {
			unix.Close(logFD)
		}
		if segFD >= 0 {
			unix.Close(segFD)
		}
	}()
	fail := func(op string, err error) {
		if err == nil {
			err = errors.New("short write")
		}
		w.err = fmt.Errorf("%s after %d records: %w", op, w.records.Load(), err)
	}
	logFile := &ackedFile{name: "log", id: 1}
	w.files = append(w.files, logFile)
	logFD, err := unix.Open(filepath.Join(w.mnt, logFile.name), unix.O_CREAT|unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0o644)
	if err != nil {
		fail("create log", err)
		return
	}
	var logOff int64
	var seg *ackedFile
	buf := make([]byte, 8192)
	// write writes p at off (off < 0: appends), and acknowledges what was
	// written now or, in fsync mode, adds it to pending.
	type pend struct {
		f      *ackedFile
		off, n int64
	}
	var pending []pend
	write := func(fd int, f *ackedFile, off int64, p []byte, appendAt int64) bool {
		var n int
		var err error
		at := off
		if off < 0 {
			at = appendAt
			n, err = unix.Write(fd, p)
		} else {
			n, err = unix.Pwrite(fd, p, off)
		}
		if n > 0 {
			if w.fsync {
				pending = append(pending, pend{f, at, int64(n)})
			} else {
				f.ack(at, int64(n))
			}
		}
		if err != nil || n != len(p) {
			fail("write "+f.name, err)
			return false
		}
		return true
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if i%segRecords == 0 {
			if segFD >= 0 {
				err := unix.Close(segFD)
				segFD = -1
				if err != nil {
					fail("close "+seg.name, err)
					return
				}
			}
			seg = &ackedFile{name: fmt.Sprintf("seg%05d", i/segRecords), id: uint64(2 + i/segRecords)}
			segFD, err = unix.Open(filepath.Join(w.mnt, seg.name), unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
			if err != nil {
				segFD = -1
				fail("create "+seg.name, err)
				return
			}
			w.files = append(w.files, seg)
		}
		// An append of a random size, then a pwrite of a fixed-size record
		// into the segment (the records of a segment are written in a
		// shuffled order, so that some land beyond the end of the file).
		n := 1 + w.rng.IntN(len(buf))
		pattern(logFile.id, logOff, buf[:n])
		if !write(logFD, logFile, -1, buf[:n], logOff) {
			return
		}
		logOff += int64(n)
		slot := (i/segRecords*7 + i%segRecords*5) % segRecords // a permutation of 0..15
		off := int64(slot * segRecSize)
		pattern(seg.id, off, buf[:segRecSize])
		if !write(segFD, seg, off, buf[:segRecSize], 0) {
			return
		}
		if w.fsync {
			if err := unix.Fsync(logFD); err != nil {
				fail("fsync log", err)
				return
			}
			if err := unix.Fsync(segFD); err != nil {
				fail("fsync "+seg.name, err)
				return
			}
			for _, p := range pending {
				p.f.ack(p.off, p.n)
			}
			pending = pending[:0]
		}
		w.records.Add(1)
		if w.dead.Load() {
			w.recordsAfterDeath.Add(1)
		}
	}
}

// TestCrashSIGKILLWriteLoop kills the daemon with SIGKILL at a random moment
// of a write loop and checks, on the lower tree, that everything the writer
// saw acknowledged is there: with fsync, what write and fsync acknowledged;
// without, what write() acknowledged (the lower file's page cache is the
// same kernel's). The dead mount is then unmounted.
func TestCrashSIGKILLWriteLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	fusetest.RequireFuse(t)
	for _, mode := range daemonModes {
		for _, fsync := range []bool{true, false} {
			name := mode.name + "/NoFsync"
			if fsync {
				name = mode.name + "/Fsync"
			}
			for round := 1; round <= crashRounds; round++ {
				t.Run(fmt.Sprintf("%s/%d", name, round), func(t *testing.T) {
					crashWriteLoop(t, mode.flags, mode.passthrough, fsync)
				})
			}
		}
	}
}

// crashRounds is how many times each case of TestCrashSIGKILLWriteLoop kills
// a daemon, each time at another random moment.
const crashRounds = 3

// crashWriteLoop is one round of TestCrashSIGKILLWriteLoop.
func crashWriteLoop(t *testing.T, flags []string, wantPassthrough *bool, fsync bool) {
	lower, mnt := crashDirs(t)
	d := fusetest.StartMount(t, lower, mnt, flags...)
	detachDeadMount(t, mnt)
	pt := daemonUsesPassthrough(t, d)
	if wantPassthrough != nil && pt != *wantPassthrough {
		t.Fatalf("daemon says passthrough=%v, want %v; stderr:\n%s", pt, *wantPassthrough, d.Stderr)
	}
	t.Logf("passthrough=%v", pt)

	w := &crashWriter{mnt: mnt, fsync: fsync, rng: rand.New(rand.NewPCG(rand.Uint64(), 1))}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(stop)
	}()
	// Let the loop run, then kill at a random moment.
	fusetest.Eventually(t, 10*time.Second, "the writer to get going", func() bool {
		select {
		case <-done:
			return true
		default:
			return w.records.Load() >= 20
		}
	})
	select {
	case <-done:
		t.Fatalf("the writer stopped before the kill: %v", w.err)
	default:
	}
	delay := time.Duration(rand.Int64N(int64(300 * time.Millisecond)))
	time.Sleep(delay)
	before := w.records.Load()
	d.Signal(t, syscall.SIGKILL)
	d.Wait(t, 10*time.Second)
	w.dead.Store(true)
	// Give the writer time to see the dead mount. Passthrough
	// writes to files already open may go on succeeding: the
	// kernel writes the backing file without the daemon.
	select {
	case <-done:
	case <-time.After(300 * time.Millisecond):
	}
	close(stop)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the writer is stuck 20s after the daemon died")
	}
	t.Logf("killed after %v at record ~%d; writer stopped after %d acknowledged records (%d after the daemon was reaped): %v",
		delay.Round(time.Millisecond), before, w.records.Load(), w.recordsAfterDeath.Load(), w.err)

	var acked int64
	for _, f := range w.files {
		acked += f.bytes()
		if err := f.verify(lower); err != nil {
			t.Errorf("acknowledged data lost: %v", err)
		}
	}
	t.Logf("%d files, %d acknowledged bytes intact on the lower tree", len(w.files), acked)

	// The mount is dead: the kernel says ENOTCONN, and a plain
	// umount removes it.
	if err := unix.Access(mnt, unix.F_OK); err != unix.ENOTCONN {
		t.Errorf("access(%s) on the dead mount: %v, want ENOTCONN", mnt, err)
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Errorf("umount of the dead mount: %v", err)
	}
	if fusetest.SievefsMounted(mnt) {
		t.Errorf("%s still mounted after umount", mnt)
	}
}

// termWorker makes, renames, removes and reads back files in its own
// directory of the mount until it is told to stop or an operation fails. It
// works either through paths or relative to a descriptor of its directory
// (which keeps the mount busy, and reaches it after a lazy unmount).
type termWorker struct {
	id     int
	dirfd  int    // unix.AT_FDCWD for a worker that uses paths
	prefix string // its directory with a slash, for a worker that uses paths
	rng    *rand.Rand

	files     map[string]fileContent // what must be on the lower tree
	names     []string               // the keys of files, to pick from
	uncertain map[string]bool        // names an interrupted operation touched
	seq       int
	ops       map[string]int // completed operations by kind
	corrupt   []string       // reads that returned wrong data
	err       error          // what stopped it
}

type fileContent struct {
	id   uint64
	size int
}

func (w *termWorker) add(name string, c fileContent) {
	w.files[name] = c
	w.names = append(w.names, name)
}

func (w *termWorker) remove(name string) {
	delete(w.files, name)
	for i, n := range w.names {
		if n == name {
			w.names[i] = w.names[len(w.names)-1]
			w.names = w.names[:len(w.names)-1]
			return
		}
	}
}

func (w *termWorker) pick() string { return w.names[w.rng.IntN(len(w.names))] }

func (w *termWorker) run(stop <-chan struct{}) {
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-stop:
			return
		default:
		}
		var err error
		switch op := w.rng.IntN(10); {
		case op < 5 || len(w.names) == 0:
			err = w.create(buf)
		case op == 5:
			err = w.rename()
		case op == 6:
			err = w.unlink()
		default:
			err = w.read(buf)
		}
		if err != nil {
			w.err = err
			return
		}
	}
}

func (w *termWorker) create(buf []byte) error {
	w.seq++
	name := fmt.Sprintf("f%06d", w.seq)
	c := fileContent{id: uint64(w.id)<<32 | uint64(w.seq), size: w.rng.IntN(256 << 10)}
	w.uncertain[name] = true // until close returns
	fd, err := unix.Openat(w.dirfd, w.prefix+name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	for off := 0; off < c.size; {
		n := min(1+w.rng.IntN(len(buf)), c.size-off)
		pattern(c.id, int64(off), buf[:n])
		m, err := unix.Write(fd, buf[:n])
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("write %s: %w", name, err)
		}
		off += m
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	delete(w.uncertain, name)
	w.add(name, c)
	w.ops["create"]++
	return nil
}

func (w *termWorker) rename() error {
	old := w.pick()
	w.seq++
	name := fmt.Sprintf("r%06d", w.seq)
	c := w.files[old]
	if err := unix.Renameat(w.dirfd, w.prefix+old, w.dirfd, w.prefix+name); err != nil {
		w.remove(old)
		w.uncertain[old], w.uncertain[name] = true, true
		return fmt.Errorf("rename %s %s: %w", old, name, err)
	}
	w.remove(old)
	w.add(name, c)
	w.ops["rename"]++
	return nil
}

func (w *termWorker) unlink() error {
	name := w.pick()
	w.remove(name)
	if err := unix.Unlinkat(w.dirfd, w.prefix+name, 0); err != nil {
		w.uncertain[name] = true
		return fmt.Errorf("unlink %s: %w", name, err)
	}
	w.ops["unlink"]++
	return nil
}

func (w *termWorker) read(buf []byte) error {
	name := w.pick()
	c := w.files[name]
	fd, err := unix.Openat(w.dirfd, w.prefix+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer unix.Close(fd)
	var off int
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if n == 0 {
			break
		}
		if off+n > c.size {
			w.corrupt = append(w.corrupt, fmt.Sprintf("%s: read past its %d bytes", name, c.size))
			return nil
		}
		if err := checkPattern(c.id, int64(off), buf[:n]); err != nil {
			w.corrupt = append(w.corrupt, fmt.Sprintf("%s: %v", name, err))
			return nil
		}
		off += n
	}
	if off != c.size {
		w.corrupt = append(w.corrupt, fmt.Sprintf("%s: read %d bytes, want %d", name, off, c.size))
	}
	w.ops["read"]++
	return nil
}

// verify checks the worker's directory on the lower tree: every file it
// made and did not remove or rename away is there, whole, and nothing it
// removed or renamed away is.
func (w *termWorker) verify(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Errorf("worker %d: %v", w.id, err)
		return
	}
	present := map[string]bool{}
	for _, e := range ents {
		present[e.Name()] = true
		if _, ok := w.files[e.Name()]; !ok && !w.uncertain[e.Name()] {
			t.Errorf("worker %d: %s is on the lower tree, but was removed or renamed away", w.id, e.Name())
		}
	}
	names := make([]string, 0, len(w.files))
	for name := range w.files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := w.files[name]
		if !present[name] {
			t.Errorf("worker %d: %s (%d bytes, closed successfully) is missing from the lower tree", w.id, name, c.size)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("worker %d: %v", w.id, err)
			continue
		}
		if len(data) != c.size {
			t.Errorf("worker %d: %s is %d bytes on the lower tree, want %d", w.id, name, len(data), c.size)
			continue
		}
		if err := checkPattern(c.id, 0, data); err != nil {
			t.Errorf("worker %d: %s: %v", w.id, name, err)
		}
	}
}

// TestSIGTERMUnderLoad sends SIGTERM to the daemon while workers create,
// write, rename, remove and read back files through the mount. The daemon
// must exit 0 in time and leave nothing mounted, and every file whose close
// succeeded (and that was not removed or renamed away since) must be whole on
// the lower tree.
//
// Half the workers use paths; after the lazy unmount their paths no longer
// reach the mount and they stop. The other half work relative to descriptors
// of their directories, which keep the mount busy: in the Abort case they go
// on until the daemon aborts the connection after its grace period; in the
// Graceful case they stop and close their descriptors soon after SIGTERM,
// and the daemon must then exit without aborting.
func TestSIGTERMUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("SIGTERM under load skipped in -short mode")
	}
	fusetest.RequireFuse(t)
	const workers = 6
	for _, mode := range daemonModes {
		for _, graceful := range []bool{false, true} {
			name := mode.name + "/Abort"
			if graceful {
				name = mode.name + "/Graceful"
			}
			t.Run(name, func(t *testing.T) {
				lower, mnt := crashDirs(t)
				d := fusetest.StartMount(t, lower, mnt, mode.flags...)
				detachDeadMount(t, mnt)
				pt := daemonUsesPassthrough(t, d)
				if mode.passthrough != nil && pt != *mode.passthrough {
					t.Fatalf("daemon says passthrough=%v, want %v; stderr:\n%s", pt, *mode.passthrough, d.Stderr)
				}

				ws := make([]*termWorker, workers)
				for i := range ws {
					dir := filepath.Join(mnt, fmt.Sprintf("w%d", i))
					if err := os.Mkdir(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					w := &termWorker{
						id: i, dirfd: unix.AT_FDCWD, prefix: dir + "/",
						rng:   rand.New(rand.NewPCG(rand.Uint64(), uint64(i))),
						files: map[string]fileContent{}, uncertain: map[string]bool{}, ops: map[string]int{},
					}
					if i%2 == 1 {
						fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
						if err != nil {
							t.Fatal(err)
						}
						w.dirfd, w.prefix = fd, ""
					}
					ws[i] = w
				}
				stop := make(chan struct{})
				var wg sync.WaitGroup
				for _, w := range ws {
					wg.Add(1)
					go func() {
						defer wg.Done()
						w.run(stop)
						if w.dirfd >= 0 {
							unix.Close(w.dirfd)
						}
					}()
				}
				allDone := make(chan struct{})
				go func() {
					wg.Wait()
					close(allDone)
				}()
				stopWorkers := sync.OnceFunc(func() { close(stop) })
				t.Cleanup(func() {
					stopWorkers()
					select {
					case <-allDone:
					case <-time.After(30 * time.Second):
						t.Error("workers still running 30s after being told to stop")
					}
				})

				time.Sleep(time.Second + time.Duration(rand.Int64N(int64(500*time.Millisecond))))
				select {
				case <-allDone:
					for _, w := range ws {
						t.Logf("worker %d: %v", w.id, w.err)
					}
					t.Fatal("the workers stopped before SIGTERM")
				default:
				}
				sent := time.Now()
				d.Signal(t, syscall.SIGTERM)
				if graceful {
					time.Sleep(500 * time.Millisecond)
					stopWorkers()
				}
				select {
				case <-allDone:
				case <-time.After(30 * time.Second):
					t.Fatal("the workers are stuck 30s after SIGTERM")
				}
				stopped := time.Since(sent)
				bound := sievefs.DefaultUnmountGrace + 5*time.Second
				code := d.Wait(t, bound)
				exited := time.Since(sent)
				aborted := strings.Contains(d.Stderr.String(), "aborting the FUSE connection")
				t.Logf("passthrough=%v; workers stopped %v and the daemon exited %v after SIGTERM (code %d, aborted the connection: %v)",
					pt, stopped.Round(time.Millisecond), exited.Round(time.Millisecond), code, aborted)
				for _, w := range ws {
					kind := "paths"
					if w.prefix == "" {
						kind = "dirfd"
					}
					t.Logf("worker %d (%s): %v, %d files to check, %d uncertain; stopped by: %v",
						w.id, kind, w.ops, len(w.files), len(w.uncertain), w.err)
				}
				if code != 0 {
					t.Errorf("exit code %d after SIGTERM, want 0; stderr:\n%s", code, d.Stderr)
				}
				if exited > bound {
					t.Errorf("the daemon took %v to exit after SIGTERM, over %v (DefaultUnmountGrace + 5s)", exited, bound)
				}
				if graceful && aborted {
					t.Errorf("the daemon aborted the connection although every file was closed %v after SIGTERM; stderr:\n%s",
						stopped.Round(time.Millisecond), d.Stderr)
				}
				if fusetest.SievefsMounted(mnt) {
					t.Errorf("%s still mounted after the daemon exited", mnt)
				}
				for _, w := range ws {
					for _, c := range w.corrupt {
						t.Errorf("worker %d read wrong data through the mount: %s", w.id, c)
					}
					w.verify(t, filepath.Join(lower, fmt.Sprintf("w%d", w.id)))
				}
				// Nothing was written into the bare mountpoint once the
				// mount was detached.
				if !fusetest.SievefsMounted(mnt) {
					if ents, err := os.ReadDir(mnt); err != nil {
						t.Errorf("read the bare mountpoint: %v", err)
					} else if len(ents) > 0 {
						t.Errorf("%d entries in the bare mountpoint after the unmount, e.g. %s", len(ents), ents[0].Name())
					}
				}
			})
		}
	}
}
