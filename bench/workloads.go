package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Row is one line of the report: one measured quantity, as a rate (higher
// is better), so that every ratio reads the same way.
type Row struct {
	Name   string
	Label  string
	Unit   string
	Target Target // the target for sievefs with passthrough
	Data   bool   // a data row (the passthrough data targets)
}

// Target is what issue 4 asks of sievefs (with passthrough) on a row.
type Target struct {
	MinNative float64 // at least this ratio to native (0: none)
	BeatPeer  bool    // faster than the peer
}

func (t Target) String() string {
	var p []string
	if t.MinNative > 0 {
		p = append(p, fmt.Sprintf("≥%.2f×native", t.MinNative))
	}
	if t.BeatPeer {
		p = append(p, ">peer")
	}
	return strings.Join(p, ", ")
}

var rows = []Row{
	{Name: "seqread-cold", Label: "sequential read 1 MiB, cold", Unit: "MiB/s", Target: Target{MinNative: 0.95}, Data: true},
	{Name: "seqread-warm", Label: "sequential read 1 MiB, warm", Unit: "MiB/s", Target: Target{MinNative: 0.95}, Data: true},
	{Name: "randread-1", Label: "random read 4 KiB, 1 job", Unit: "IOPS", Target: Target{MinNative: 0.95}, Data: true},
	{Name: "randread-4", Label: "random read 4 KiB, 4 jobs", Unit: "IOPS", Target: Target{MinNative: 0.95}, Data: true},
	{Name: "mmap-randread", Label: "mmap random read 4 KiB", Unit: "IOPS", Target: Target{MinNative: 0.95}, Data: true},
	{Name: "seqwrite", Label: "sequential write 1 MiB", Unit: "MiB/s", Target: Target{MinNative: 0.9}, Data: true},
	{Name: "randwrite", Label: "random write 4 KiB", Unit: "IOPS", Target: Target{MinNative: 0.8}, Data: true},
	{Name: "create", Label: "create files", Unit: "files/s", Target: Target{BeatPeer: true}},
	{Name: "stat-cold", Label: "stat, cold", Unit: "files/s", Target: Target{BeatPeer: true}},
	{Name: "stat-warm", Label: "stat, warm", Unit: "files/s", Target: Target{MinNative: 1.0, BeatPeer: true}},
	{Name: "ls-f", Label: "ls -f (readdir), cold", Unit: "entries/s", Target: Target{BeatPeer: true}},
	{Name: "ls-l", Label: "ls -l (readdir + lstat), cold", Unit: "entries/s", Target: Target{BeatPeer: true}},
	{Name: "find", Label: "find, warm", Unit: "entries/s", Target: Target{MinNative: 1.0, BeatPeer: true}},
	{Name: "unlink", Label: "unlink files", Unit: "files/s", Target: Target{BeatPeer: true}},
	{Name: "openclose", Label: "open+close", Unit: "ops/s", Target: Target{BeatPeer: true}},
	{Name: "untar", Label: "untar a source tree", Unit: "entries/s", Target: Target{BeatPeer: true}},
	{Name: "rm-rf", Label: "rm -rf of it", Unit: "entries/s", Target: Target{BeatPeer: true}},
	{Name: "find-cat", Label: "find | xargs cat, small files", Unit: "files/s", Target: Target{BeatPeer: true}},
}

func rowByName(name string) Row {
	for _, r := range rows {
		if r.Name == name {
			return r
		}
	}
	return Row{Name: name, Label: name}
}

// Group is a workload: what it prepares once per lower, on the lower
// directory, and what one run does through one configuration's root. A
// run records one sample per row through Run.measure.
type Group struct {
	Name    string
	Rows    []string
	Prepare func(h *Harness, l *Lower) error
	Run     func(r *Run) error
}

var groups = []*Group{
	{Name: "seqread-cold", Rows: []string{"seqread-cold"}, Prepare: prepareReadFile, Run: runSeqReadCold},
	{Name: "seqread-warm", Rows: []string{"seqread-warm"}, Prepare: prepareReadFile, Run: runSeqReadWarm},
	{Name: "randread-1", Rows: []string{"randread-1"}, Prepare: prepareReadFile, Run: runRandRead(1, "psync", "randread-1")},
	{Name: "randread-4", Rows: []string{"randread-4"}, Prepare: prepareReadFile, Run: runRandRead(4, "psync", "randread-4")},
	{Name: "mmap", Rows: []string{"mmap-randread"}, Prepare: prepareReadFile, Run: runRandRead(1, "mmap", "mmap-randread")},
	{Name: "seqwrite", Rows: []string{"seqwrite"}, Run: runSeqWrite},
	{Name: "randwrite", Rows: []string{"randwrite"}, Prepare: prepareRandWriteFile, Run: runRandWrite},
	{Name: "meta", Rows: []string{"create", "stat-cold", "stat-warm", "ls-f", "ls-l", "find", "unlink"}, Run: runMeta},
	{Name: "openclose", Rows: []string{"openclose"}, Prepare: prepareOpenClose, Run: runOpenClose},
	{Name: "untar", Rows: []string{"untar", "rm-rf"}, Run: runUntar},
	{Name: "find-cat", Rows: []string{"find-cat"}, Prepare: prepareSmallTree, Run: runFindCat},
}

func groupNames() string {
	var n []string
	for _, g := range groups {
		n = append(n, g.Name)
	}
	return strings.Join(n, ",")
}

func selectGroups(list string) ([]*Group, error) {
	if list == "" {
		return groups, nil
	}
	var out []*Group
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		found := false
		for _, g := range groups {
			if g.Name == n {
				out = append(out, g)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("-workloads: unknown group %q (have %s)", n, groupNames())
		}
	}
	return out, nil
}

// ---- shared input files, made once per lower on the lower directory ----

const (
	readFile  = "bench-data/seq.bin"
	randWFile = "bench-data/randw.bin"
	ocFile    = "bench-data/openclose.txt"
	smallTree = "bench-data/small"
)

// writeDataFile writes size bytes of incompressible data (no holes, no
// zero pages) to path, unless it is already there with that size.
func writeDataFile(path string, size int64) error {
	if st, err := os.Stat(path); err == nil && st.Size() == size {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	rnd := rand.New(rand.NewSource(size))
	for off := int64(0); off < size; off += int64(len(buf)) {
		rnd.Read(buf)
		n := int64(len(buf))
		if size-off < n {
			n = size - off
		}
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func prepareReadFile(h *Harness, l *Lower) error {
	return writeDataFile(filepath.Join(l.lowerDir, readFile), h.sizes.SeqFile)
}

func prepareRandWriteFile(h *Harness, l *Lower) error {
	return writeDataFile(filepath.Join(l.lowerDir, randWFile), h.sizes.RandWFile)
}

func prepareOpenClose(h *Harness, l *Lower) error {
	p := filepath.Join(l.lowerDir, ocFile)
	os.MkdirAll(filepath.Dir(p), 0o755)
	return os.WriteFile(p, []byte("open me\n"), 0o644)
}

// prepareSmallTree makes SmallFiles files of 1 B to SmallMaxLen, 100 to a
// directory, two levels deep.
func prepareSmallTree(h *Harness, l *Lower) error {
	dir := filepath.Join(l.lowerDir, smallTree)
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	rnd := rand.New(rand.NewSource(42))
	buf := make([]byte, h.sizes.SmallMaxLen)
	rnd.Read(buf)
	for i := 0; i < h.sizes.SmallFiles; i++ {
		d := filepath.Join(dir, fmt.Sprintf("a%02d", i/1000), fmt.Sprintf("b%02d", (i/100)%10))
		if i%100 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		n := 1 + rnd.Intn(h.sizes.SmallMaxLen)
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d.txt", i)), buf[:n], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// makeTarball tars the source tree for untar/rm -rf into the temporary
// directory (on the -dir filesystem), once for every lower.
func (h *Harness) makeTarball() error {
	src := h.sizes.TarSource
	if src == "" {
		if h.quick {
			out, err := h.goCmd("list", "-m", "-f", "{{.Dir}}", "github.com/hanwen/go-fuse/v2")
			if err != nil {
				return fmt.Errorf("locate go-fuse's module directory: %v: %s", err, out)
			}
			src = out
		} else {
			out, err := h.goCmd("env", "GOROOT")
			if err != nil {
				return fmt.Errorf("go env GOROOT: %v", err)
			}
			src = filepath.Join(out, "src", "cmd")
		}
	}
	h.tarball = filepath.Join(h.tmp, "tree.tar")
	cmd := exec.Command("tar", "-C", filepath.Dir(src), "-cf", h.tarball, filepath.Base(src))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tar %s: %v: %s", src, err, out)
	}
	out, err := exec.Command("tar", "-tf", h.tarball).Output()
	if err != nil {
		return fmt.Errorf("tar -tf: %v", err)
	}
	h.tarEntries = strings.Count(string(out), "\n")
	st, _ := os.Stat(h.tarball)
	h.meta.Tree = fmt.Sprintf("%s (%d entries, %.1f MiB tarball)", src, h.tarEntries, float64(st.Size())/(1<<20))
	logf("tarball of %s", h.meta.Tree)
	return nil
}

// ---- fio ----

// fio runs one fio job on file and returns its read or write rate: MiB/s
// for sequential jobs, IOPS for random ones.
func (r *Run) fio(file string, args ...string) (float64, error) {
	out := filepath.Join(r.h.tmp, "fio.json")
	os.Remove(out)
	base := []string{
		"--name=bench", "--filename=" + file,
		"--ioengine=psync", "--direct=0",
		"--invalidate=0", // keep the page cache: cold runs drop caches themselves
		"--fallocate=none",
		"--output-format=json", "--output=" + out,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := r.command(ctx, r.h.tmp, "fio", append(base, args...)...); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return 0, err
	}
	// fio may print notes before the JSON.
	if i := strings.IndexByte(string(b), '{'); i > 0 {
		b = b[i:]
	}
	var res struct {
		Jobs []struct {
			Error int `json:"error"`
			Read  struct {
				BwBytes float64 `json:"bw_bytes"`
				IOPS    float64 `json:"iops"`
			} `json:"read"`
			Write struct {
				BwBytes float64 `json:"bw_bytes"`
				IOPS    float64 `json:"iops"`
			} `json:"write"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return 0, fmt.Errorf("fio output: %v", err)
	}
	if len(res.Jobs) == 0 {
		return 0, fmt.Errorf("fio output: no jobs")
	}
	j := res.Jobs[0]
	if j.Error != 0 {
		return 0, fmt.Errorf("fio: job error %d", j.Error)
	}
	random := false
	for _, a := range args {
		if strings.HasPrefix(a, "--rw=rand") {
			random = true
		}
	}
	bw, iops := j.Read.BwBytes+j.Write.BwBytes, j.Read.IOPS+j.Write.IOPS
	if random {
		return iops, nil
	}
	return bw / (1 << 20), nil
}

func (r *Run) timeBased() []string {
	return []string{"--time_based", fmt.Sprintf("--runtime=%dms", r.h.sizes.TimeBased.Milliseconds())}
}

// warm reads a file once through this run's root, so that the timed part
// finds it in the page cache.
func warm(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := make([]byte, 1<<20)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

func runSeqReadCold(r *Run) error {
	if err := dropCaches(); err != nil {
		return err
	}
	return r.measure("seqread-cold", func() (float64, error) {
		return r.fio(filepath.Join(r.root, readFile), "--rw=read", "--bs=1M", "--size="+strconv.FormatInt(r.h.sizes.SeqFile, 10))
	})
}

func runSeqReadWarm(r *Run) error {
	f := filepath.Join(r.root, readFile)
	if err := warm(f); err != nil {
		return err
	}
	return r.measure("seqread-warm", func() (float64, error) {
		return r.fio(f, append([]string{"--rw=read", "--bs=1M", "--size=" + strconv.FormatInt(r.h.sizes.SeqFile, 10)}, r.timeBased()...)...)
	})
}

func runRandRead(jobs int, engine, row string) func(r *Run) error {
	return func(r *Run) error {
		f := filepath.Join(r.root, readFile)
		if err := warm(f); err != nil {
			return err
		}
		args := []string{"--rw=randread", "--bs=4k", "--size=" + strconv.FormatInt(r.h.sizes.SeqFile, 10),
			"--ioengine=" + engine, "--norandommap", "--randrepeat=0"}
		if jobs > 1 {
			args = append(args, fmt.Sprintf("--numjobs=%d", jobs), "--group_reporting")
		}
		return r.measure(row, func() (float64, error) {
			return r.fio(f, append(args, r.timeBased()...)...)
		})
	}
}

func runSeqWrite(r *Run) error {
	f := r.work("bench-data/seqwrite") + ".bin"
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return err
	}
	os.Remove(f)
	err := r.measure("seqwrite", func() (float64, error) {
		return r.fio(f, "--rw=write", "--bs=1M", "--size="+strconv.FormatInt(r.h.sizes.WriteFile, 10))
	})
	if rerr := os.Remove(f); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func runRandWrite(r *Run) error {
	f := filepath.Join(r.root, randWFile)
	if err := warm(f); err != nil {
		return err
	}
	return r.measure("randwrite", func() (float64, error) {
		return r.fio(f, append([]string{"--rw=randwrite", "--bs=4k", "--size=" + strconv.FormatInt(r.h.sizes.RandWFile, 10),
			"--norandommap", "--randrepeat=0"}, r.timeBased()...)...)
	})
}

// ---- metadata, in process ----

// runMeta creates MetaFiles empty files over MetaDirs directories, stats
// them cold (after dropping caches) and warm, lists the directories cold
// (getdents64, as ls -f), walks the tree warm (as find), and unlinks them.
func runMeta(r *Run) error {
	work := r.work("meta")
	n, nd := r.h.sizes.MetaFiles, r.h.sizes.MetaDirs
	dirs := make([]string, nd)
	for i := range dirs {
		dirs[i] = filepath.Join(work, fmt.Sprintf("d%02d", i))
	}
	names := make([]string, n)
	paths := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("f%05d", i)
		paths[i] = filepath.Join(dirs[i*nd/n], names[i])
	}
	defer os.RemoveAll(work) // after a failure
	if err := os.Mkdir(work, 0o755); err != nil {
		return err
	}
	err := r.measure("create", func() (float64, error) {
		t0 := time.Now()
		for d := 0; d < nd; d++ {
			if err := unix.Mkdir(dirs[d], 0o755); err != nil {
				return 0, err
			}
			dfd, err := unix.Open(dirs[d], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return 0, err
			}
			for i := d * n / nd; i < (d+1)*n/nd; i++ {
				fd, err := unix.Openat(dfd, names[i], unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
				if err != nil {
					unix.Close(dfd)
					return 0, err
				}
				unix.Close(fd)
			}
			unix.Close(dfd)
		}
		return float64(n) / time.Since(t0).Seconds(), nil
	})
	if err != nil {
		return err
	}
	stat := func() (float64, error) {
		var st unix.Stat_t
		t0 := time.Now()
		for _, p := range paths {
			if err := unix.Fstatat(unix.AT_FDCWD, p, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return 0, err
			}
		}
		return float64(n) / time.Since(t0).Seconds(), nil
	}
	if err := dropCaches(); err != nil {
		return err
	}
	if err := r.measure("stat-cold", stat); err != nil {
		return err
	}
	if err := r.measure("stat-warm", stat); err != nil {
		return err
	}
	if err := dropCaches(); err != nil {
		return err
	}
	// A listing that does not look at the entries (ls -f), and one that
	// stats each (ls -l): the kernel may ask for attributes with the
	// entries (READDIRPLUS) or not, and each row shows one side of that.
	list := func(stat bool) func() (float64, error) {
		return func() (float64, error) {
			var st unix.Stat_t
			t0 := time.Now()
			total := 0
			for _, d := range append([]string{work}, dirs...) {
				var each func(string, uint8) error
				if stat {
					each = func(name string, _ uint8) error {
						return unix.Fstatat(unix.AT_FDCWD, filepath.Join(d, name), &st, unix.AT_SYMLINK_NOFOLLOW)
					}
				}
				c, err := listDir(d, each)
				if err != nil {
					return 0, err
				}
				total += c
			}
			return float64(total) / time.Since(t0).Seconds(), nil
		}
	}
	if err := r.measure("ls-f", list(false)); err != nil {
		return err
	}
	if err := dropCaches(); err != nil {
		return err
	}
	if err := r.measure("ls-l", list(true)); err != nil {
		return err
	}
	walk := func() (float64, error) {
		t0 := time.Now()
		c, err := walkTree(work)
		return float64(c) / time.Since(t0).Seconds(), err
	}
	if _, err := walk(); err != nil { // warm up
		return err
	}
	if err := r.measure("find", walk); err != nil {
		return err
	}
	return r.measure("unlink", func() (float64, error) {
		t0 := time.Now()
		for d := 0; d < nd; d++ {
			dfd, err := unix.Open(dirs[d], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return 0, err
			}
			for i := d * n / nd; i < (d+1)*n/nd; i++ {
				if err := unix.Unlinkat(dfd, names[i], 0); err != nil {
					unix.Close(dfd)
					return 0, err
				}
			}
			unix.Close(dfd)
			if err := unix.Rmdir(dirs[d]); err != nil {
				return 0, err
			}
		}
		if err := unix.Rmdir(work); err != nil {
			return 0, err
		}
		return float64(n) / time.Since(t0).Seconds(), nil
	})
}

// listDir reads a directory with getdents64 (as ls -f does: no stat) and
// returns how many entries it has besides . and ..; each entry is passed to
// fn if not nil.
func listDir(dir string, fn func(name string, typ uint8) error) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 32<<10)
	count := 0
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return count, err
		}
		if n <= 0 {
			return count, nil
		}
		for off := 0; off < n; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name
			reclen := int(buf[off+16]) | int(buf[off+17])<<8
			typ := buf[off+18]
			name := buf[off+19 : off+reclen]
			if i := indexZero(name); i >= 0 {
				name = name[:i]
			}
			off += reclen
			if string(name) == "." || string(name) == ".." {
				continue
			}
			count++
			if fn != nil {
				if err := fn(string(name), typ); err != nil {
					return count, err
				}
			}
		}
	}
}

func indexZero(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// walkTree visits every entry below dir as find does: getdents64 and the
// entry type, descending into directories, stat only where the type is
// unknown.
func walkTree(dir string) (int, error) {
	total := 0
	var sub []string
	c, err := listDir(dir, func(name string, typ uint8) error {
		if typ == unix.DT_UNKNOWN {
			var st unix.Stat_t
			if err := unix.Fstatat(unix.AT_FDCWD, filepath.Join(dir, name), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				typ = unix.DT_DIR
			}
		}
		if typ == unix.DT_DIR {
			sub = append(sub, filepath.Join(dir, name))
		}
		return nil
	})
	total += c
	if err != nil {
		return total, err
	}
	for _, s := range sub {
		c, err := walkTree(s)
		total += c
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func runOpenClose(r *Run) error {
	p := filepath.Join(r.root, ocFile)
	n := r.h.sizes.OpenClose
	return r.measure("openclose", func() (float64, error) {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return 0, err
			}
			unix.Close(fd)
		}
		return float64(n) / time.Since(t0).Seconds(), nil
	})
}

// ---- untar, rm -rf, find | xargs cat: the real tools ----

func runUntar(r *Run) error {
	dir := r.work("untar")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir) // after a failure
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	entries := float64(r.h.tarEntries)
	err := r.measure("untar", func() (float64, error) {
		t0 := time.Now()
		if _, err := r.command(ctx, dir, "tar", "-xf", r.h.tarball); err != nil {
			return 0, err
		}
		return entries / time.Since(t0).Seconds(), nil
	})
	if err != nil {
		return err
	}
	syncAll()
	return r.measure("rm-rf", func() (float64, error) {
		t0 := time.Now()
		if _, err := r.command(ctx, r.root, "rm", "-rf", dir); err != nil {
			return 0, err
		}
		return entries / time.Since(t0).Seconds(), nil
	})
}

func runFindCat(r *Run) error {
	dir := filepath.Join(r.root, smallTree)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const script = "find . -type f -print0 | xargs -0 cat > /dev/null"
	if _, err := r.command(ctx, dir, "sh", "-c", script); err != nil { // warm up
		return err
	}
	files := float64(r.h.sizes.SmallFiles)
	return r.measure("find-cat", func() (float64, error) {
		t0 := time.Now()
		if _, err := r.command(ctx, dir, "sh", "-c", script); err != nil {
			return 0, err
		}
		return files / time.Since(t0).Seconds(), nil
	})
}
