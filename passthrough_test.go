package sievefs_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestDaemonServedReadSize reads a file in order through a mount with
// passthrough off and checks that the data is the lower file's and that the
// kernel asked for it in READs of about 1 MiB (the mount's readahead, as
// much as go-fuse can splice), not of its default 128 KiB readahead, which
// would take eight times as many round trips.
func TestDaemonServedReadSize(t *testing.T) {
	v := fusetest.Mount(t, sievefs.Options{Passthrough: sievefs.PassthroughOff})
	const size, request = 16 << 20, 1 << 20
	data := fusetest.RandomBytes(t, size)
	fusetest.WriteFile(t, v.LowerPath("big"), data)
	before := v.Mount.Status().Counters.DaemonReads
	f, err := os.Open(v.Path("big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(bufio.NewReaderSize(f, request))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes through the mount, not the lower file's %d", len(got), size)
	}
	// The kernel may split a readahead window; 128 KiB requests would
	// take 128 READs.
	if reads := v.Mount.Status().Counters.DaemonReads - before; reads > 2*size/request {
		t.Errorf("%d READs for a %d MiB file, want about %d (1 MiB each)", reads, size>>20, size/request)
	}
}

// TestPassthroughEngaged reads and writes a large file through the mount
// and checks that no READ or WRITE reached the daemon: by its counters and,
// where tracefs is available, by the kernel's fuse_request_send tracepoint.
// It also checks that the backing file is listed while the file is open and
// gone after close.
func TestPassthroughEngaged(t *testing.T) {
	v := fusetest.Mount(t, sievefs.Options{})
	fusetest.RequirePassthrough(t, v.Mount)

	const size = 8 << 20
	data := fusetest.RandomBytes(t, size)
	fusetest.WriteFile(t, v.LowerPath("big"), data)
	lowerPath := filepath.Join(v.Mount.Lower, "big")

	tr := fusetest.NewFuseTrace(t, v.Mnt)
	if tr != nil {
		tr.Reset(t)
	}
	before := v.Mount.Status().Counters

	f, err := os.OpenFile(v.Path("big"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	st := v.Mount.Status()
	if b := backingFor(st, lowerPath); b == nil || b.Opens != 1 {
		t.Errorf("while open: backing files %+v, want %s with 1 open", st.BackingFiles, lowerPath)
	}
	if st.OpenFiles.Passthrough != 1 || st.OpenFiles.DaemonServed != 0 {
		t.Errorf("while open: open files %+v, want 1 passthrough", st.OpenFiles)
	}

	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes that differ from the lower file", len(got))
	}
	const off = 3<<20 + 123
	patch := fusetest.RandomBytes(t, 1<<20)
	if _, err := f.WriteAt(patch, off); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(patch))
	if _, err := f.ReadAt(back, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, patch) {
		t.Fatal("read back after pwrite differs from what was written")
	}
	copy(data[off:], patch)

	after := v.Mount.Status().Counters
	if after.DaemonReads != before.DaemonReads || after.DaemonWrites != before.DaemonWrites {
		t.Errorf("daemon served data: reads %d -> %d, writes %d -> %d",
			before.DaemonReads, after.DaemonReads, before.DaemonWrites, after.DaemonWrites)
	}
	if tr != nil {
		c := tr.Counts(t)
		t.Logf("FUSE requests sent during open+read+write: %v", c)
		if c[fusetest.OpOpen] == 0 {
			t.Errorf("tracepoint saw no OPEN: the trace does not work (%v)", c)
		}
		if c[fusetest.OpRead] != 0 || c[fusetest.OpWrite] != 0 {
			t.Errorf("kernel sent %d READ and %d WRITE requests, want none", c[fusetest.OpRead], c[fusetest.OpWrite])
		}
	}

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fusetest.Eventually(t, 5*time.Second, "the backing file to be closed after the last close", func() bool {
		return len(v.Mount.Status().BackingFiles) == 0
	})
	if !bytes.Equal(fusetest.ReadFile(t, v.LowerPath("big")), data) {
		t.Error("lower file differs from what was written through the mount")
	}
}

// TestPassthroughSurvivesSIGSTOP stops a separate daemon process after a
// file is open and checks that reading and writing through the open
// descriptor still completes: with passthrough the kernel does the I/O.
func TestPassthroughSurvivesSIGSTOP(t *testing.T) {
	fusetest.RequireFuse(t)
	lower := filepath.Join(t.TempDir(), "lower")
	mnt := filepath.Join(t.TempDir(), "mnt")
	for _, d := range []string{lower, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const size = 4 << 20
	data := fusetest.RandomBytes(t, size)
	fusetest.WriteFile(t, filepath.Join(lower, "file"), data)

	d := fusetest.StartMount(t, lower, mnt)
	fusetest.Eventually(t, 5*time.Second, "the daemon's 'mounted' log line", func() bool {
		return bytes.Contains([]byte(d.Stderr.String()), []byte("msg=mounted"))
	})
	if !bytes.Contains([]byte(d.Stderr.String()), []byte("passthrough=true")) {
		t.Skipf("the daemon does not use passthrough; its log:\n%s", d.Stderr)
	}

	f, err := os.OpenFile(filepath.Join(mnt, "file"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 4096)
	if _, err := io.ReadFull(f, head); err != nil {
		t.Fatal(err)
	}
	// A first write while the daemon runs: the kernel asks the daemon for
	// security.capability before a write (file_remove_privs) unless it
	// knows the inode has no privileges to remove.
	if _, err := f.WriteAt(head, 0); err != nil {
		t.Fatal(err)
	}

	pid := d.Cmd.Process.Pid
	d.Signal(t, syscall.SIGSTOP)
	fusetest.Eventually(t, 5*time.Second, "the daemon to stop", func() bool { return processState(pid) == "T" })

	// Each step runs in a goroutine: if it blocks on the stopped daemon,
	// the test resumes the daemon, waits for the step and fails.
	step := func(name string, fn func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- fn() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s while the daemon is stopped: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			d.Signal(t, syscall.SIGCONT)
			<-done
			t.Fatalf("%s blocked while the daemon was stopped (it completed after SIGCONT)", name)
		}
	}
	step("read", func() error {
		rest, err := io.ReadAll(f)
		if err == nil && !bytes.Equal(append(head, rest...), data) {
			err = errDiffer
		}
		return err
	})
	const off = 1<<20 + 7
	patch := fusetest.RandomBytes(t, 64<<10)
	step("pwrite", func() error {
		_, err := f.WriteAt(patch, off)
		return err
	})
	step("read back", func() error {
		back := make([]byte, len(patch))
		_, err := f.ReadAt(back, off)
		if err == nil && !bytes.Equal(back, patch) {
			err = errDiffer
		}
		return err
	})
	d.Signal(t, syscall.SIGCONT)

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copy(data[off:], patch)
	if !bytes.Equal(fusetest.ReadFile(t, filepath.Join(lower, "file")), data) {
		t.Error("lower file differs from what was written through the mount")
	}
	d.Signal(t, syscall.SIGTERM)
	if code := d.Wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d on SIGTERM, want 0; stderr:\n%s", code, d.Stderr)
	}
	if fusetest.SievefsMounted(mnt) {
		t.Error("still mounted after the daemon exited")
	}
}

// errDiffer reports data that differs from what was expected.
var errDiffer = errors.New("data differs from what was expected")

// crossCheck writes a fresh pattern at off through w, reads it back through
// r and from the lower file.
func crossCheck(t *testing.T, w, r *os.File, off int64, lowerPath string) {
	t.Helper()
	pat := fusetest.RandomBytes(t, 8192)
	if _, err := w.WriteAt(pat, off); err != nil {
		t.Fatalf("write through %s: %v", w.Name(), err)
	}
	got := make([]byte, len(pat))
	if _, err := r.ReadAt(got, off); err != nil {
		t.Fatalf("read through the other descriptor: %v", err)
	}
	if !bytes.Equal(got, pat) {
		t.Errorf("the other descriptor reads other bytes at %d than were written", off)
	}
	low := fusetest.ReadFile(t, lowerPath)
	if int64(len(low)) < off+int64(len(pat)) || !bytes.Equal(low[off:off+int64(len(pat))], pat) {
		t.Errorf("the lower file holds other bytes at %d than were written", off)
	}
}

// openRW opens path read-write, failing the test on error; cleanup closes it.
func openRW(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestMixedOpens checks opens of one file served partly by passthrough and
// partly by the daemon, shared backing files, passthrough off, and mmap.
func TestMixedOpens(t *testing.T) {
	setup := func(t *testing.T, opts sievefs.Options) *fusetest.View {
		v := fusetest.Mount(t, opts)
		for _, name := range []string{"A", "B"} {
			fusetest.WriteFile(t, v.LowerPath(name), fusetest.RandomBytes(t, 1<<20))
		}
		return v
	}
	noBacking := func(t *testing.T, v *fusetest.View) {
		t.Helper()
		fusetest.Eventually(t, 5*time.Second, "all backing files to be closed", func() bool {
			return len(v.Mount.Status().BackingFiles) == 0
		})
	}

	t.Run("OverBudgetThenPassthrough", func(t *testing.T) {
		v := setup(t, sievefs.Options{MaxBacking: 1})
		fusetest.RequirePassthrough(t, v.Mount)
		lowerB := filepath.Join(v.Mount.Lower, "B")

		fa := openRW(t, v.Path("A"))
		fb1 := openRW(t, v.Path("B"))
		st := v.Mount.Status()
		if st.OpenFiles.Passthrough != 1 || st.OpenFiles.DaemonServed != 1 {
			t.Fatalf("A and B open: open files %+v, want 1 passthrough and 1 daemon-served", st.OpenFiles)
		}
		if backingFor(st, filepath.Join(v.Mount.Lower, "A")) == nil || len(st.BackingFiles) != 1 {
			t.Fatalf("A and B open: backing files %+v, want A only", st.BackingFiles)
		}
		if st.Counters.BackingOverBudget == 0 {
			t.Error("opening B over budget was not counted")
		}

		// B's inode is in daemon-served mode while fb1 is open: a second
		// open joins it even though the budget has room again, because a
		// passthrough open could not coexist with a mapping of fb1.
		fa.Close()
		noBacking(t, v)
		fb2 := openRW(t, v.Path("B"))
		st = v.Mount.Status()
		if len(st.BackingFiles) != 0 || st.OpenFiles.DaemonServed != 2 {
			t.Fatalf("second open of B: backing files %+v, open files %+v, want none and 2 daemon-served", st.BackingFiles, st.OpenFiles)
		}

		writes := v.Mount.Status().Counters.DaemonWrites
		crossCheck(t, fb1, fb2, 4096, lowerB)
		crossCheck(t, fb2, fb1, 65536+17, lowerB)
		crossCheck(t, fb1, fb2, 1<<20-100, lowerB) // grows the file
		crossCheck(t, fb2, fb1, 2<<20, lowerB)     // leaves a hole
		if v.Mount.Status().Counters.DaemonWrites == writes {
			t.Error("writes through the daemon-served descriptor did not reach the daemon")
		}
		fi, err := fb1.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(2<<20 + 8192); fi.Size() != want {
			t.Errorf("size through the daemon-served descriptor %d, want %d", fi.Size(), want)
		}

		// Once B's daemon-served opens are closed, B goes passthrough and
		// sees what they wrote.
		fb1.Close()
		fb2.Close()
		fusetest.Eventually(t, 5*time.Second, "B's daemon-served opens to be released", func() bool {
			return v.Mount.Status().OpenFiles.DaemonServed == 0
		})
		fb3 := openRW(t, v.Path("B"))
		st = v.Mount.Status()
		if b := backingFor(st, lowerB); b == nil || b.Opens != 1 {
			t.Fatalf("open of B after the daemon-served ones closed: backing files %+v, want B with 1 open", st.BackingFiles)
		}
		want := fusetest.ReadFile(t, lowerB)
		got := make([]byte, len(want))
		if _, err := fb3.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Error("passthrough open of B does not see what the daemon-served opens wrote")
		}
	})

	t.Run("SharedBacking", func(t *testing.T) {
		v := setup(t, sievefs.Options{MaxBacking: 1})
		fusetest.RequirePassthrough(t, v.Mount)
		lowerB := filepath.Join(v.Mount.Lower, "B")
		shared := v.Mount.Status().Counters.BackingShared

		fb1 := openRW(t, v.Path("B"))
		fb2 := openRW(t, v.Path("B"))
		st := v.Mount.Status()
		if b := backingFor(st, lowerB); b == nil || b.Opens != 2 || len(st.BackingFiles) != 1 {
			t.Fatalf("two opens of B: backing files %+v, want B with 2 opens", st.BackingFiles)
		}
		if st.OpenFiles.Passthrough != 2 {
			t.Errorf("two opens of B: open files %+v, want 2 passthrough", st.OpenFiles)
		}
		if st.Counters.BackingShared != shared+1 {
			t.Errorf("shared backing counter %d -> %d, want +1", shared, st.Counters.BackingShared)
		}
		crossCheck(t, fb1, fb2, 100, lowerB)
		crossCheck(t, fb2, fb1, 300000, lowerB)

		fb1.Close()
		fusetest.Eventually(t, 5*time.Second, "B's backing file to drop to 1 open", func() bool {
			b := backingFor(v.Mount.Status(), lowerB)
			return b != nil && b.Opens == 1
		})
		crossCheck(t, fb2, fb2, 5000, lowerB)
		fb2.Close()
		noBacking(t, v)
	})

	t.Run("PassthroughOff", func(t *testing.T) {
		v := setup(t, sievefs.Options{Passthrough: sievefs.PassthroughOff})
		lowerB := filepath.Join(v.Mount.Lower, "B")
		st := v.Mount.Status()
		if st.Passthrough.Active || st.Passthrough.Reason == "" {
			t.Errorf("passthrough status %+v, want inactive with a reason", st.Passthrough)
		}
		fb1 := openRW(t, v.Path("B"))
		fb2 := openRW(t, v.Path("B"))
		st = v.Mount.Status()
		if st.OpenFiles.DaemonServed != 2 || st.OpenFiles.Passthrough != 0 || len(st.BackingFiles) != 0 {
			t.Errorf("two opens: open files %+v, backing %+v; want 2 daemon-served", st.OpenFiles, st.BackingFiles)
		}
		c := st.Counters
		crossCheck(t, fb1, fb2, 0, lowerB)
		crossCheck(t, fb2, fb1, 1<<20+5, lowerB)
		c2 := v.Mount.Status().Counters
		if c2.DaemonReads == c.DaemonReads || c2.DaemonWrites == c.DaemonWrites {
			t.Errorf("passthrough off but the daemon served no data: %+v -> %+v", c, c2)
		}
	})

	t.Run("MmapPassthrough", func(t *testing.T) {
		v := setup(t, sievefs.Options{})
		fusetest.RequirePassthrough(t, v.Mount)
		f := openRW(t, v.Path("B"))
		if st := v.Mount.Status(); st.OpenFiles.Passthrough != 1 {
			t.Fatalf("open files %+v, want 1 passthrough", st.OpenFiles)
		}
		before := v.Mount.Status().Counters
		mmapCheck(t, f, v.Path("B"), v.LowerPath("B"))
		after := v.Mount.Status().Counters
		if after.DaemonReads != before.DaemonReads || after.DaemonWrites != before.DaemonWrites {
			t.Errorf("mmap I/O reached the daemon: %+v -> %+v", before, after)
		}
	})

	t.Run("MmapOverBudget", func(t *testing.T) {
		v := setup(t, sievefs.Options{MaxBacking: 1})
		fusetest.RequirePassthrough(t, v.Mount)
		openRW(t, v.Path("A"))
		f := openRW(t, v.Path("B"))
		if st := v.Mount.Status(); st.OpenFiles.DaemonServed != 1 {
			t.Fatalf("open files %+v, want B daemon-served", st.OpenFiles)
		}
		mmapCheck(t, f, v.Path("B"), v.LowerPath("B"))
	})

	t.Run("MmapPassthroughOff", func(t *testing.T) {
		v := setup(t, sievefs.Options{Passthrough: sievefs.PassthroughOff})
		mmapCheck(t, openRW(t, v.Path("B")), v.Path("B"), v.LowerPath("B"))
	})
}

// mmapCheck has a child process map the file at path shared, compare the
// mapping with the lower file, write through the mapping and msync; then it
// checks the lower file and a read through f. The mapping lives in another
// process because a fault on a daemon-served mapping waits for the daemon
// while holding the faulting process's mmap lock, which deadlocks a daemon
// in the same process.
func mmapCheck(t *testing.T, f *os.File, path, lowerPath string) {
	t.Helper()
	pat := fusetest.RandomBytes(t, 10000)
	const off = 12345
	want := fmt.Sprintf("%x", sha256.Sum256(fusetest.ReadFile(t, lowerPath)))
	out := fusetest.RunHelper(t, "mmap", path, strconv.Itoa(off), hex.EncodeToString(pat))
	if got := strings.TrimSpace(out); got != want {
		t.Errorf("mapping has sha256 %s, lower file %s", got, want)
	}
	if low := fusetest.ReadFile(t, lowerPath); !bytes.Equal(low[off:off+len(pat)], pat) {
		t.Error("lower file does not hold what was written through the mapping")
	}
	got := make([]byte, len(pat))
	if _, err := f.ReadAt(got, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, pat) {
		t.Error("read through the descriptor differs from what was written through the mapping")
	}
}

// mmapHelper runs in the child of mmapCheck: args are the path, the offset
// and the hex of the bytes to write. It prints the sha256 of the mapping as
// first mapped.
func mmapHelper(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("want PATH OFFSET HEX, got %q", args)
	}
	off, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	pat, err := hex.DecodeString(args[2])
	if err != nil {
		return err
	}
	f, err := os.OpenFile(args[0], os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	defer unix.Munmap(m)
	fmt.Printf("%x\n", sha256.Sum256(m))
	if off+len(pat) > len(m) {
		return fmt.Errorf("offset %d past the mapping", off)
	}
	copy(m[off:], pat)
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		return fmt.Errorf("msync: %w", err)
	}
	return nil
}

// mwriteHelper does what xfs_io -c "mmap 0 1m" -c "mwrite 0 4k" -c
// "munmap" does to the file args[0]: map 1 MiB shared, write the first
// 4 KiB, unmap.
func mwriteHelper(args []string) error {
	f, err := os.OpenFile(args[0], os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	for i := range 4096 {
		m[i] = 'X'
	}
	return unix.Munmap(m)
}

// TestPassthroughMmapTimes writes a passthrough file through a shared
// mapping, which the daemon never sees, with the kernel caching attributes
// for a day (--cache always): stat through the mount shows the lower
// file's new mtime once the writer is done, as xfstests generic/080 and
// 215 check (xfs_io maps, writes and exits, then stat).
func TestPassthroughMmapTimes(t *testing.T) {
	low, mnt := t.TempDir(), t.TempDir()
	d := fusetest.StartMount(t, low, mnt, "--cache", "always", "--passthrough", "require")
	defer d.Stop(t)
	v := &fusetest.View{Lower: low, Mnt: mnt}
	// As xfs_io -f -c "truncate 1m": made and sized through the mount.
	f, err := os.OpenFile(v.Path("f"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// As stat -c %y: statx asking for the mtime only.
	mtime := func(path string) time.Time {
		var stx unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_MTIME, &stx); err != nil {
			t.Fatal(err)
		}
		return time.Unix(stx.Mtime.Sec, int64(stx.Mtime.Nsec))
	}
	old := mtime(v.Path("f"))                    // cached for a day now
	fusetest.RunHelper(t, "mwrite", v.Path("f")) // in a child: maps, writes, exits
	lower := mtime(v.LowerPath("f"))
	if lower.Equal(old) {
		t.Fatal("the mapped write did not move the lower file's mtime")
	}
	// The child's RELEASE may still be on its way: while the file is open
	// for writing its attributes are not cached, after it they are dropped.
	if got := mtime(v.Path("f")); !got.Equal(lower) {
		t.Errorf("mtime through the mount after a mapped write: %v, want the lower %v", got, lower)
	}
}

func init() {
	fusetest.Helper("mmap", mmapHelper)
	fusetest.Helper("mwrite", mwriteHelper)
}

// backingFor returns the backing file of the lower path, or nil.
func backingFor(st sievefs.Status, lowerPath string) *sievefs.BackingFile {
	for i, b := range st.BackingFiles {
		if b.Path == lowerPath {
			return &st.BackingFiles[i]
		}
	}
	return nil
}

// processState returns the state letter of /proc/PID/stat (R, S, T…).
func processState(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}
