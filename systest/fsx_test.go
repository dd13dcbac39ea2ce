package systest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
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

// fsx parameters, after the defaults of the original fsx.
const (
	fsxMaxLen     = 256 << 10 // largest file size the ops produce
	fsxMaxOp      = 64 << 10  // largest length of one op
	fsxDefaultOps = 3000
	fsxCheckEvery = 100 // full comparison every so many ops
	fsxLogTail    = 20  // ops printed on a mismatch
	fsxFileName   = "fsx.dat"

	fsxEnvSeed = "SIEVEFS_FSX_SEED"
	fsxEnvOps  = "SIEVEFS_FSX_OPS"
	// The environment of the client process (see TestFsxClientProcess).
	fsxEnvFile  = "SIEVEFS_FSX_CLIENT_FILE"  // the file through the mount
	fsxEnvLower = "SIEVEFS_FSX_CLIENT_LOWER" // the same file in the lower directory
	fsxEnvOpLog = "SIEVEFS_FSX_CLIENT_OPLOG" // where every op is logged as it starts
)

// fsxModes are the fallocate modes exercised.
var fsxModes = []struct {
	name string
	mode uint32
}{
	{"0", 0},
	{"KEEP_SIZE", unix.FALLOC_FL_KEEP_SIZE},
	{"PUNCH_HOLE|KEEP_SIZE", unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE},
	{"ZERO_RANGE", unix.FALLOC_FL_ZERO_RANGE},
}

// fsxConfig is one way of mounting for an fsx session.
type fsxConfig struct {
	name string
	opts sievefs.Options
	// overBudget takes the only backing file (MaxBacking 1) with another
	// open file, so that the file under test is served by the daemon in a
	// passthrough mount: the fallback path of PassthroughAuto.
	overBudget bool
}

var fsxConfigs = []fsxConfig{
	{name: "PassthroughAuto", opts: sievefs.Options{Passthrough: sievefs.PassthroughAuto}},
	{name: "PassthroughOff", opts: sievefs.Options{Passthrough: sievefs.PassthroughOff}},
	{name: "PassthroughAutoOverBudget", opts: sievefs.Options{Passthrough: sievefs.PassthroughAuto, MaxBacking: 1}, overBudget: true},
}

// TestFsx runs random reads, writes, truncations, fallocates, mmap reads and
// writes, reopens and stats on one file through the mount and on a
// reference file on the native filesystem, and compares the two. Set
// SIEVEFS_FSX_SEED to replay a run and SIEVEFS_FSX_OPS to change its length.
//
// The ops run in a child process (TestFsxClientProcess), not in the process
// that serves the mount. In one address space, a client that faults on a
// mapping of the mount, or calls mmap (which holds the mm lock while the
// kernel waits for pages of the file), waits for the daemon while the daemon
// may wait for it: for the mm lock when the Go runtime maps memory, or for
// the faulting thread to stop when the Go runtime collects garbage. Both
// deadlocks were seen here with a single process.
func TestFsx(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(fsxEnvSeed); s != "" {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", fsxEnvSeed, s, err)
		}
		seed = v
	}
	ops := fsxDefaultOps
	if s := os.Getenv(fsxEnvOps); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			t.Fatalf("%s=%q: want a count of ops", fsxEnvOps, s)
		}
		ops = v
	}
	t.Logf("seed %d, %d ops (replay with %s=%d %s=%d)", seed, ops, fsxEnvSeed, seed, fsxEnvOps, ops)
	for _, c := range fsxConfigs {
		t.Run(c.name, func(t *testing.T) {
			runFsx(t, c, seed, ops)
		})
	}
}

// runFsx mounts a view as c says, runs one fsx session against it in a
// child process and checks which side served the data.
func runFsx(t *testing.T, c fsxConfig, seed uint64, ops int) {
	v := fusetest.Mount(t, c.opts)
	if c.overBudget {
		if !v.Mount.Status().Passthrough.Active {
			t.Skip("passthrough is unavailable, so there is no budget to exceed")
		}
		hog := v.Path("hog")
		if err := os.WriteFile(hog, []byte("hog"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(hog)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	runFsxClient(t, v, seed, ops)

	st := v.Mount.Status()
	t.Logf("passthrough active %v, daemon-served opens %d, daemon reads %d, daemon writes %d",
		st.Passthrough.Active, st.Counters.DaemonServedOpens, st.Counters.DaemonReads, st.Counters.DaemonWrites)
	daemonPath := !st.Passthrough.Active || c.overBudget
	if daemonPath && st.Counters.DaemonWrites == 0 {
		t.Errorf("the daemon served no WRITE: the test did not test the daemon's data path")
	}
	if !daemonPath && (st.Counters.DaemonReads != 0 || st.Counters.DaemonWrites != 0) {
		t.Errorf("passthrough active, yet the daemon served %d READ and %d WRITE requests",
			st.Counters.DaemonReads, st.Counters.DaemonWrites)
	}
}

// runFsxClient runs TestFsxClientProcess in a child process against the
// mounted view v, and fails with its output and the last ops it started
// if it fails or outlives its time.
func runFsxClient(t *testing.T, v *fusetest.View, seed uint64, ops int) {
	budget := 10 * time.Minute
	if d, ok := t.Deadline(); ok {
		budget = time.Until(d) - 30*time.Second
	}
	ctx, cancel := context.WithTimeout(t.Context(), budget)
	defer cancel()
	opLog := filepath.Join(t.TempDir(), "oplog")
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFsxClientProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(),
		fsxEnvSeed+"="+strconv.FormatUint(seed, 10),
		fsxEnvOps+"="+strconv.Itoa(ops),
		fsxEnvFile+"="+v.Path(fsxFileName),
		fsxEnvLower+"="+v.LowerPath(fsxFileName),
		fsxEnvOpLog+"="+opLog,
	)
	// On timeout, ask for a goroutine dump first.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if i := strings.Index(line, "ops by kind"); i >= 0 {
				t.Log("client: " + line[i:])
			}
		}
		return
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w: still running after %v", err, budget.Round(time.Second))
	}
	// The client prints the tail of its op log when it fails a check; when
	// it hung or died, print the ops it had started.
	msg := fmt.Sprintf("fsx client: %v\n%s", err, out)
	if data, rerr := os.ReadFile(opLog); rerr == nil && !strings.Contains(string(out), "last ") {
		tail := strings.Split(strings.TrimSpace(string(data)), "\n")
		tail = tail[max(0, len(tail)-fsxLogTail):]
		msg += "\nlast ops started:\n  " + strings.Join(tail, "\n  ")
	}
	t.Fatal(msg)
}

// TestFsxClientProcess is the client side of TestFsx: it runs only in the
// child process that TestFsx starts, and skips otherwise.
func TestFsxClientProcess(t *testing.T) {
	file, lowerFile := os.Getenv(fsxEnvFile), os.Getenv(fsxEnvLower)
	if file == "" || lowerFile == "" {
		t.Skip("the client side of TestFsx, run by TestFsx in a child process")
	}
	seed, err := strconv.ParseUint(os.Getenv(fsxEnvSeed), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := strconv.Atoi(os.Getenv(fsxEnvOps))
	if err != nil {
		t.Fatal(err)
	}
	x := newFsx(t, file, lowerFile, seed)
	defer x.closeAll()
	if path := os.Getenv(fsxEnvOpLog); path != "" {
		if x.opLog, err = os.Create(path); err != nil {
			t.Fatal(err)
		}
	}
	for x.op = 1; x.op <= ops; x.op++ {
		x.step()
		if x.op%fsxCheckEvery == 0 {
			x.compareAll()
		}
	}
	x.compareAll()
	x.finish()
	t.Logf("ops by kind %v", x.counts)
	if x.mmapErr != nil {
		t.Errorf("a MAP_SHARED mapping of the file through the mount failed (%v), although the "+
			"lower filesystem supports it; the mmap ops were skipped", x.mmapErr)
	}
}

// fsx is one session: a file through the mount, its reference twin on the
// native filesystem, and the log of the ops applied to both.
type fsx struct {
	t         *testing.T
	rng       *rand.Rand
	src       *rand.ChaCha8 // file data
	op        int
	mpath     string // the file through the mount
	lowerPath string // the same file in the lower directory
	rpath     string // the reference file
	mfd       int
	rfd       int
	log       []string // the last ops, oldest first
	opLog     *os.File // every op, written as it starts; may be nil
	counts    map[string]int
	modes     []bool // fallocate modes still enabled, by index in fsxModes
	// mmapErr is the error of the first refused MAP_SHARED mapping; the
	// session goes on without mmap ops, and fails at the end.
	mmapErr error
}

func newFsx(t *testing.T, mpath, lowerPath string, seed uint64) *fsx {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	x := &fsx{
		t:         t,
		rng:       rand.New(rand.NewPCG(seed, 0x6673780a)),
		src:       rand.NewChaCha8(key),
		mpath:     mpath,
		lowerPath: lowerPath,
		rpath:     filepath.Join(t.TempDir(), "fsx.ref"),
		mfd:       -1,
		rfd:       -1,
		counts:    map[string]int{},
		modes:     make([]bool, len(fsxModes)),
	}
	for i := range x.modes {
		x.modes[i] = true
	}
	var err error
	if x.mfd, err = unix.Open(x.mpath, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644); err != nil {
		t.Fatalf("create %s: %v", x.mpath, err)
	}
	if x.rfd, err = unix.Open(x.rpath, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644); err != nil {
		t.Fatalf("create %s: %v", x.rpath, err)
	}
	return x
}

// closeAll closes whatever is still open.
func (x *fsx) closeAll() {
	if x.mfd >= 0 {
		unix.Close(x.mfd)
		x.mfd = -1
	}
	if x.rfd >= 0 {
		unix.Close(x.rfd)
		x.rfd = -1
	}
	if x.opLog != nil {
		x.opLog.Close()
		x.opLog = nil
	}
}

// logf records an op.
func (x *fsx) logf(format string, args ...any) {
	if len(x.log) == fsxLogTail {
		x.log = x.log[1:]
	}
	line := fmt.Sprintf("#%d ", x.op) + fmt.Sprintf(format, args...)
	x.log = append(x.log, line)
	if x.opLog != nil {
		x.opLog.WriteString(line + "\n")
	}
}

// fatalf fails the test with the tail of the op log.
func (x *fsx) fatalf(format string, args ...any) {
	x.t.Helper()
	x.t.Fatalf("op #%d: %s\nlast %d ops:\n  %s", x.op, fmt.Sprintf(format, args...),
		len(x.log), strings.Join(x.log, "\n  "))
}

// sameErr fails unless the mount and the reference gave the same result.
func (x *fsx) sameErr(what string, merr, rerr error) {
	x.t.Helper()
	if !errors.Is(merr, rerr) && !(merr == nil && rerr == nil) {
		x.fatalf("%s: mount says %v, reference says %v", what, merr, rerr)
	}
}

// refSize returns the size of the reference file.
func (x *fsx) refSize() int64 {
	var st unix.Stat_t
	if err := unix.Fstat(x.rfd, &st); err != nil {
		x.fatalf("fstat reference: %v", err)
	}
	return st.Size
}

// span picks an offset below limit and a length of at least one byte that
// keeps the range within fsxMaxLen.
func (x *fsx) span(limit int64) (off, n int64) {
	off = x.rng.Int64N(limit)
	n = 1 + x.rng.Int64N(fsxMaxOp)
	return off, min(n, fsxMaxLen-off)
}

// data returns n bytes of fresh random file data.
func (x *fsx) data(n int64) []byte {
	b := make([]byte, n)
	x.src.Read(b)
	return b
}

// step applies one random op to both files.
func (x *fsx) step() {
	kinds := []struct {
		name   string
		weight int
		fn     func()
	}{
		{"write", 24, x.write},
		{"read", 18, x.read},
		{"truncate", 8, x.truncate},
		{"fallocate", 12, x.fallocate},
		{"mapread", 10, x.mapRead},
		{"mapwrite", 10, x.mapWrite},
		{"reopen", 4, x.reopen},
		{"stat", 8, x.stat},
		{"fsync", 2, x.fsync},
	}
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	r := x.rng.IntN(total)
	for _, k := range kinds {
		if r < k.weight {
			x.counts[k.name]++
			k.fn()
			return
		}
		r -= k.weight
	}
}

// write pwrites random data at a random offset, often beyond EOF.
func (x *fsx) write() {
	off, n := x.span(fsxMaxLen)
	b := x.data(n)
	x.logf("write off=%#x len=%#x (size %#x)", off, n, x.refSize())
	merr := pwriteAll(x.mfd, b, off)
	rerr := pwriteAll(x.rfd, b, off)
	x.sameErr("pwrite", merr, rerr)
}

// read preads a random range, sometimes past EOF, and compares.
func (x *fsx) read() {
	size := x.refSize()
	off := x.rng.Int64N(size + fsxMaxOp/4 + 1)
	n := 1 + x.rng.Int64N(fsxMaxOp)
	x.logf("read off=%#x len=%#x (size %#x)", off, n, size)
	got, merr := preadAll(x.mfd, n, off)
	want, rerr := preadAll(x.rfd, n, off)
	x.sameErr("pread", merr, rerr)
	x.sameBytes("pread", got, want, off)
}

// truncate sets a random size, up or down.
func (x *fsx) truncate() {
	size := x.rng.Int64N(fsxMaxLen + 1)
	x.logf("truncate %#x -> %#x", x.refSize(), size)
	x.sameErr("ftruncate", unix.Ftruncate(x.mfd, size), unix.Ftruncate(x.rfd, size))
}

// fallocate applies a random fallocate mode to a random range. A mode that
// the reference filesystem does not support either is dropped.
func (x *fsx) fallocate() {
	i := x.rng.IntN(len(fsxModes))
	off, n := x.span(fsxMaxLen)
	if !x.modes[i] {
		return
	}
	m := fsxModes[i]
	x.logf("fallocate %s off=%#x len=%#x (size %#x)", m.name, off, n, x.refSize())
	merr := unix.Fallocate(x.mfd, m.mode, off, n)
	rerr := unix.Fallocate(x.rfd, m.mode, off, n)
	if errors.Is(merr, unix.EOPNOTSUPP) && errors.Is(rerr, unix.EOPNOTSUPP) {
		x.t.Logf("fallocate mode %s: not supported by the lower filesystem either; dropped", m.name)
		x.modes[i] = false
		return
	}
	x.sameErr("fallocate "+m.name, merr, rerr)
}

// mapRead reads a random range of the file through a shared mapping of the
// mount's descriptor.
func (x *fsx) mapRead() {
	size := x.refSize()
	if size == 0 {
		x.logf("mapread skipped: empty file")
		return
	}
	off := x.rng.Int64N(size)
	n := min(1+x.rng.Int64N(fsxMaxOp), size-off)
	x.logf("mapread off=%#x len=%#x (size %#x)", off, n, size)
	pg := off &^ int64(os.Getpagesize()-1)
	m := x.mmap(pg, int(off+n-pg), unix.PROT_READ)
	if m == nil {
		return
	}
	got := bytes.Clone(m[off-pg:])
	if err := unix.Munmap(m); err != nil {
		x.fatalf("munmap: %v", err)
	}
	want, err := preadAll(x.rfd, n, off)
	if err != nil {
		x.fatalf("pread reference: %v", err)
	}
	x.sameBytes("mapread", got, want, off)
}

// mapWrite writes a random range through a shared writable mapping, synced
// with msync; like fsx it first extends the file with ftruncate when the
// range ends past EOF.
func (x *fsx) mapWrite() {
	size := x.refSize()
	off, n := x.span(fsxMaxLen)
	b := x.data(n)
	x.logf("mapwrite off=%#x len=%#x (size %#x)", off, n, size)
	if off+n > size {
		x.sameErr("mapwrite: ftruncate", unix.Ftruncate(x.mfd, off+n), unix.Ftruncate(x.rfd, off+n))
	}
	pg := off &^ int64(os.Getpagesize()-1)
	m := x.mmap(pg, int(off+n-pg), unix.PROT_READ|unix.PROT_WRITE)
	if m == nil {
		return
	}
	copy(m[off-pg:], b)
	err := unix.Msync(m, unix.MS_SYNC)
	if uerr := unix.Munmap(m); err == nil {
		err = uerr
	}
	if err != nil {
		x.fatalf("write through the mapping: %v", err)
	}
	if err := pwriteAll(x.rfd, b, off); err != nil {
		x.fatalf("pwrite reference: %v", err)
	}
}

// mmap maps length bytes at off of the mount's descriptor, shared. An
// ENODEV (FUSE refuses shared mappings of direct-I/O files) is recorded and
// answered with nil, as are all later calls; other errors fail the test.
func (x *fsx) mmap(off int64, length, prot int) []byte {
	if x.mmapErr != nil {
		x.logf("mmap skipped: %v", x.mmapErr)
		return nil
	}
	m, err := unix.Mmap(x.mfd, off, length, prot, unix.MAP_SHARED)
	if errors.Is(err, unix.ENODEV) {
		x.logf("mmap: %v", err)
		x.mmapErr = err
		return nil
	}
	if err != nil {
		x.fatalf("mmap prot=%#x: %v", prot, err)
	}
	return m
}

// reopen closes the mount's descriptor and opens the file again, now and
// then with O_TRUNC.
func (x *fsx) reopen() {
	flags := unix.O_RDWR | unix.O_CLOEXEC
	if x.rng.IntN(8) == 0 {
		flags |= unix.O_TRUNC
	}
	x.logf("reopen trunc=%v (size %#x)", flags&unix.O_TRUNC != 0, x.refSize())
	if err := unix.Close(x.mfd); err != nil {
		x.mfd = -1
		x.fatalf("close: %v", err)
	}
	x.mfd = -1
	unix.Close(x.rfd)
	x.rfd = -1
	var merr, rerr error
	x.mfd, merr = unix.Open(x.mpath, flags, 0)
	x.rfd, rerr = unix.Open(x.rpath, flags, 0)
	if merr != nil || rerr != nil {
		x.fatalf("reopen: mount says %v, reference says %v", merr, rerr)
	}
}

// stat compares the size seen by fstat and stat through the mount.
func (x *fsx) stat() {
	want := x.refSize()
	x.logf("stat (size %#x)", want)
	var st unix.Stat_t
	if err := unix.Fstat(x.mfd, &st); err != nil {
		x.fatalf("fstat: %v", err)
	}
	if st.Size != want {
		x.fatalf("fstat size %#x, want %#x", st.Size, want)
	}
	if err := unix.Stat(x.mpath, &st); err != nil {
		x.fatalf("stat: %v", err)
	}
	if st.Size != want {
		x.fatalf("stat size %#x, want %#x", st.Size, want)
	}
}

// fsync syncs the mount's descriptor, sometimes data only.
func (x *fsx) fsync() {
	data := x.rng.IntN(2) == 0
	x.logf("fsync datasync=%v", data)
	var err error
	if data {
		err = unix.Fdatasync(x.mfd)
	} else {
		err = unix.Fsync(x.mfd)
	}
	if err != nil {
		x.fatalf("fsync: %v", err)
	}
}

// compareAll compares the whole file through the mount, and the lower file,
// with the reference.
func (x *fsx) compareAll() {
	x.t.Helper()
	want, err := preadAll(x.rfd, fsxMaxLen+fsxMaxOp, 0)
	if err != nil {
		x.fatalf("read reference: %v", err)
	}
	got, err := preadAll(x.mfd, fsxMaxLen+fsxMaxOp, 0)
	if err != nil {
		x.fatalf("read through the mount: %v", err)
	}
	x.sameBytes("full read through the mount", got, want, 0)
	low, err := os.ReadFile(x.lowerPath)
	if err != nil {
		x.fatalf("read lower file: %v", err)
	}
	x.sameBytes("full read of the lower file", low, want, 0)
}

// finish closes the mount's descriptor and checks the file once more, read
// by a fresh open through the mount and from the lower directory.
func (x *fsx) finish() {
	x.t.Helper()
	x.op++
	x.logf("close")
	if err := unix.Close(x.mfd); err != nil {
		x.mfd = -1
		x.fatalf("close: %v", err)
	}
	x.mfd = -1
	want, err := preadAll(x.rfd, fsxMaxLen+fsxMaxOp, 0)
	if err != nil {
		x.fatalf("read reference: %v", err)
	}
	got, err := os.ReadFile(x.mpath)
	if err != nil {
		x.fatalf("read through the mount: %v", err)
	}
	x.sameBytes("final read through the mount", got, want, 0)
	low, err := os.ReadFile(x.lowerPath)
	if err != nil {
		x.fatalf("read lower file: %v", err)
	}
	x.sameBytes("final read of the lower file", low, want, 0)
}

// sameBytes fails with the first differing offset unless got equals want;
// base is the file offset of both.
func (x *fsx) sameBytes(what string, got, want []byte, base int64) {
	x.t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	detail := "one is a prefix of the other"
	if i < len(got) && i < len(want) {
		j := i
		for j < len(got) && j < len(want) && got[j] != want[j] {
			j++
		}
		detail = fmt.Sprintf("got %#02x, want %#02x, in a run of %#x differing bytes", got[i], want[i], j-i)
	}
	x.fatalf("%s: %#x bytes, want %#x; first difference at file offset %#x: %s",
		what, len(got), len(want), base+int64(i), detail)
}

// pwriteAll writes all of b at off.
func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// preadAll reads up to n bytes at off, stopping only at EOF.
func preadAll(fd int, n, off int64) ([]byte, error) {
	b := make([]byte, n)
	got := 0
	for int64(got) < n {
		k, err := unix.Pread(fd, b[got:], off+int64(got))
		if err != nil {
			return nil, err
		}
		if k == 0 {
			break
		}
		got += k
	}
	return b[:got], nil
}
