package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// registry knows everything the run started or mounted, so that it can be
// undone at the end, on failure and on a signal: daemons (stopped by pid),
// workload processes (killed by their process group, which is their pid),
// the lower filesystems it mounted, and the temporary directory.
type registry struct {
	mu       sync.Mutex
	tmp      string
	daemons  map[*daemon]bool
	children map[int]bool
	mounts   []string // lower filesystems mounted (tmpfs, the ext4 image)
	stopping bool
	once     sync.Once
	parked   chan struct{} // closed when the main goroutine has stopped working
}

func newRegistry() *registry {
	r := &registry{daemons: map[*daemon]bool{}, children: map[int]bool{}, parked: make(chan struct{})}
	cleanupHook = r.cleanup
	return r
}

// checkpoint is called by the main goroutine between steps: once a signal
// has started the cleanup, it parks there (the signal handler exits the
// process), so that nothing new starts in the temporary directory.
func (r *registry) checkpoint() {
	r.mu.Lock()
	stopping := r.stopping
	r.mu.Unlock()
	if stopping {
		close(r.parked)
		select {}
	}
}

// cleanupAfterSignal is cleanup for the signal handler: it stops what runs,
// then waits (at most a minute) for the main goroutine to reach a
// checkpoint before it removes the temporary directory.
func (r *registry) cleanupAfterSignal() {
	r.cleanupWait(true)
}

// cleanup kills the workload processes, stops the daemons (unmounting their
// mounts), unmounts the lower filesystems and removes the temporary directory if
// nothing is mounted below it any more. It runs once; later calls wait for it.
func (r *registry) cleanup() {
	r.cleanupWait(false)
}

func (r *registry) cleanupWait(waitMain bool) {
	r.once.Do(func() {
		r.mu.Lock()
		r.stopping = true
		var kids []int
		for pid := range r.children {
			kids = append(kids, pid)
		}
		var ds []*daemon
		for d := range r.daemons {
			ds = append(ds, d)
		}
		mounts := append([]string(nil), r.mounts...)
		r.mu.Unlock()
		for _, pid := range kids {
			syscall.Kill(-pid, syscall.SIGKILL) // the child's own process group
		}
		for _, d := range ds {
			if err := d.stop(); err != nil {
				logf("cleanup: %v", err)
			}
		}
		if waitMain {
			select {
			case <-r.parked:
			case <-time.After(time.Minute):
				logf("cleanup: the workload did not stop within a minute")
			}
		}
		for i := len(mounts) - 1; i >= 0; i-- {
			unmountLower(mounts[i])
		}
		if r.tmp == "" {
			return
		}
		if left := mountsUnder(r.tmp); len(left) > 0 {
			logf("cleanup: still mounted, %s left in place: %s", r.tmp, strings.Join(left, " "))
			return
		}
		if err := os.RemoveAll(r.tmp); err != nil {
			logf("cleanup: %v", err)
		}
	})
}

// run runs a workload program in its own process group and returns its
// combined output.
func (r *registry) run(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return "", errors.New("stopping")
	}
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		return "", err
	}
	pid := cmd.Process.Pid
	r.children[pid] = true
	r.mu.Unlock()
	err := cmd.Wait()
	r.mu.Lock()
	delete(r.children, pid)
	r.mu.Unlock()
	if err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return out.String(), fmt.Errorf("%s: %v: %s", name, err, msg)
	}
	return out.String(), nil
}

// daemon is a running FUSE daemon and its mount.
type daemon struct {
	cfg  *Config
	mnt  string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	reg  *registry
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// alive says why the daemon cannot take a run, or nil.
func (d *daemon) alive() error {
	if d.exited() {
		return fmt.Errorf("%s daemon exited (%v); log: %s", d.cfg.Name, d.cmd.ProcessState, tail(d.log))
	}
	if !isMounted(d.mnt, d.fstypeOK) {
		return fmt.Errorf("%s: %s is no longer mounted", d.cfg.Name, d.mnt)
	}
	return nil
}

func (d *daemon) fstypeOK(fstype string) bool {
	if d.cfg.Kind == Sievefs {
		return fstype == "fuse.sievefs"
	}
	return strings.HasPrefix(fstype, "fuse.") || fstype == "fuse"
}

// stop asks the daemon to unmount and exit (SIGTERM to its pid); if it has
// not within 15 s, it detaches the mount and kills the daemon (SIGKILL to its
// pid).
func (d *daemon) stop() error {
	defer func() {
		d.reg.mu.Lock()
		delete(d.reg.daemons, d)
		d.reg.mu.Unlock()
	}()
	if !d.exited() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(15 * time.Second):
			logf("%s (pid %d) did not exit within 15 s of SIGTERM: detaching its mount and killing it", d.cfg.Name, d.pid())
			unix.Unmount(d.mnt, unix.MNT_DETACH)
			d.cmd.Process.Signal(syscall.SIGKILL)
			<-d.done
		}
	}
	if isMounted(d.mnt, nil) {
		if err := unix.Unmount(d.mnt, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("%s: detach %s: %v", d.cfg.Name, d.mnt, err)
		}
	}
	return nil
}

// mount starts the daemon of c over l's lower directory and waits until
// /proc/self/mountinfo shows its mount.
func (h *Harness) mount(l *Lower, c *Config) (*daemon, error) {
	mnt := filepath.Join(l.mntDir, c.Name)
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	var bin string
	var args []string
	for _, a := range c.Args {
		args = append(args, strings.ReplaceAll(a, "{bench}", h.bench))
	}
	switch c.Kind {
	case Sievefs:
		bin = h.sievefsBin
		args = append([]string{"mount"}, append(args, l.lowerDir, mnt)...)
	case Loopback, LoopbackNoPT:
		bin = h.loopbackBin
		if c.Kind == LoopbackNoPT {
			bin = h.loopbackNoPTBin
		}
		args = append(args, mnt, l.lowerDir) // loopback takes MOUNTPOINT ORIGINAL
	case PassthroughHP:
		bin = c.Bin
		args = append(args, l.lowerDir, mnt)
	default:
		return nil, fmt.Errorf("%s is not a FUSE configuration", c.Name)
	}
	logPath := filepath.Join(h.tmp, "logs", l.name+"-"+c.Name+".log")
	os.MkdirAll(filepath.Dir(logPath), 0o755)
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = lf
	cmd.Stderr = lf
	// Own process group: a ^C at the terminal reaches only the harness,
	// which unmounts in order. If the harness dies, the daemon gets SIGTERM
	// and unmounts itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	d := &daemon{cfg: c, mnt: mnt, log: logPath, cmd: cmd, done: make(chan struct{}), reg: h.reg}
	h.reg.mu.Lock()
	if h.reg.stopping {
		h.reg.mu.Unlock()
		return nil, errors.New("stopping")
	}
	if err := cmd.Start(); err != nil {
		h.reg.mu.Unlock()
		return nil, err
	}
	h.reg.daemons[d] = true
	h.reg.mu.Unlock()
	go func() {
		cmd.Wait()
		close(d.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !isMounted(mnt, d.fstypeOK) {
		if d.exited() {
			d.stop()
			return nil, fmt.Errorf("%s %s exited before mounting (%v): %s", bin, strings.Join(args, " "), cmd.ProcessState, tail(logPath))
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("%s did not mount within 30 s: %s", c.Name, tail(logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
	logf("%s: %s mounted on %s (pid %d)", l.name, c.Name, mnt, d.pid())
	return d, nil
}

// Lower is one lower tree and the mountpoints over it.
type Lower struct {
	name     string // ext4 or tmpfs
	fstype   string // as statfs says
	base     string // directory holding everything of this lower
	lowerDir string
	mntDir   string
	mount    string // the filesystem mounted for this lower, if any
	made     string // the lower directory made in a given filesystem (NAME=DIR), removed at teardown
	daemons  map[string]*daemon
}

// prepareLower makes the lower tree for name: ext4, tmpfs, or for a lower
// given as NAME=DIR, a directory it makes inside the filesystem on DIR.
func (h *Harness) prepareLower(name string) (*Lower, error) {
	given := h.givenDirs[name]
	l := &Lower{name: name, base: filepath.Join(h.tmp, name), daemons: map[string]*daemon{}}
	l.mntDir = filepath.Join(l.base, "mnt")
	if err := os.MkdirAll(l.mntDir, 0o755); err != nil {
		return nil, err
	}
	data := filepath.Join(l.base, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	// Room for the read file, the random-write file, one sequential write,
	// the small-file tree and one untarred tree at a time.
	size := h.sizes.SeqFile + h.sizes.RandWFile + h.sizes.WriteFile + 3<<30
	made := ""
	switch {
	case name == "tmpfs":
		h.reg.mu.Lock()
		err := unix.Mount("tmpfs", data, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size))
		if err == nil {
			h.reg.mounts = append(h.reg.mounts, data)
		}
		h.reg.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("mount tmpfs on %s: %w", data, err)
		}
		l.mount = data
	case name == "ext4" && h.ext4Image:
		h.reg.mu.Lock()
		var err error
		made, err = mountExt4Image(filepath.Join(l.base, "ext4.img"), data, size)
		if err == nil {
			h.reg.mounts = append(h.reg.mounts, data)
		}
		h.reg.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("%w (-ext4 dir runs on a directory under -dir instead)", err)
		}
		l.mount = data
	}
	l.lowerDir = filepath.Join(data, "lower")
	if given != "" {
		dir, err := os.MkdirTemp(given, "sievefs-bench-lower-")
		if err != nil {
			return nil, err
		}
		l.lowerDir, l.made = dir, dir
	}
	if err := os.MkdirAll(l.lowerDir, 0o755); err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(l.lowerDir, &st); err != nil {
		return nil, err
	}
	l.fstype = fsTypeName(st.Type)
	if l.fstype == "ext4" {
		l.fstype += ext4Facts(l.lowerDir)
	}
	if made != "" {
		l.fstype += "; " + made
	}
	if name == "ext4" && !strings.HasPrefix(l.fstype, "ext4") {
		logf("warning: -dir is on %s, not ext4: the \"ext4\" rows are really %s", l.fstype, l.fstype)
	}
	h.meta.Lowers = append(h.meta.Lowers, fmt.Sprintf("%s: %s (%s)", name, l.lowerDir, l.fstype))
	logf("%s: lower %s on %s", name, l.lowerDir, l.fstype)
	return l, nil
}

func (h *Harness) teardownLower(l *Lower) {
	for name, d := range l.daemons {
		if err := d.stop(); err != nil {
			logf("%v", err)
		}
		delete(l.daemons, name)
	}
	if l.mount != "" {
		unmountLower(l.mount)
		h.reg.mu.Lock()
		for i, m := range h.reg.mounts {
			if m == l.mount {
				h.reg.mounts = append(h.reg.mounts[:i], h.reg.mounts[i+1:]...)
				break
			}
		}
		h.reg.mu.Unlock()
	}
	if l.made != "" {
		os.RemoveAll(l.made)
	}
	// Never remove through a mount that could not be undone.
	if left := mountsUnder(l.base); len(left) > 0 {
		logf("%s: still mounted, not removed: %s", l.base, strings.Join(left, " "))
		return
	}
	os.RemoveAll(l.base)
}

// unmountLower unmounts a lower filesystem the harness mounted.
func unmountLower(dir string) {
	if !isMounted(dir, nil) {
		return
	}
	if err := unix.Unmount(dir, 0); err != nil {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			logf("unmount %s: %v", dir, err)
		}
	}
}

func fsTypeName(t int64) string {
	switch t {
	case 0xEF53:
		return "ext4"
	case 0x01021994:
		return "tmpfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	case 0x65735546:
		return "fuse"
	}
	return fmt.Sprintf("fs type 0x%x", t)
}

// mountinfo returns (mountpoint, fstype) of every mount this process sees.
func mountinfo() [][2]string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent maj:min root mountpoint options [optional…] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		out = append(out, [2]string{unescapeMountinfo(fields[4]), fields[sep+1]})
	}
	return out
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isMounted says whether mnt is a mountpoint whose fstype ok accepts (any
// fstype if ok is nil).
func isMounted(mnt string, ok func(string) bool) bool {
	for _, m := range mountinfo() {
		if m[0] == mnt && (ok == nil || ok(m[1])) {
			return true
		}
	}
	return false
}

func mountsUnder(dir string) []string {
	var out []string
	for _, m := range mountinfo() {
		if m[0] == dir || strings.HasPrefix(m[0], dir+"/") {
			out = append(out, m[0])
		}
	}
	return out
}

// cpuSeconds is utime+stime of a process (all its threads), from
// /proc/PID/stat, in seconds.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc/PID/stat")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad utime/stime")
	}
	const clkTck = 100 // USER_HZ on Linux
	return float64(ut+st) / clkTck, nil
}

// resetPeakRSS resets VmHWM to the current RSS (clear_refs value 5).
func resetPeakRSS(pid int) {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// peakRSSKiB is VmHWM from /proc/PID/status, in KiB.
func peakRSSKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no VmHWM")
}

func syncAll() error {
	unix.Sync()
	return nil
}

// dropCaches writes back dirty data and drops the page cache, dentries and
// inodes (which also makes the kernel forget FUSE inodes).
func dropCaches() error {
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		return fmt.Errorf("drop caches: %w", err)
	}
	return nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 1500 {
		s = "…" + s[len(s)-1500:]
	}
	if s == "" {
		return "(empty log)"
	}
	return s
}

// cpuSnapshot is the CPU time (utime+stime+cutime+cstime, in ticks) of
// every user-space process that is not this harness or one of its
// descendants (daemons, fio, tar…), by pid.
type cpuSnapshot map[int]uint64

func otherCPU() cpuSnapshot {
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	type proc struct {
		ppid  int
		ticks uint64
		kthr  bool
	}
	procs := map[int]proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // f[0] is field 3
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		flags, _ := strconv.ParseUint(f[6], 10, 64) // field 9
		var t uint64
		for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			v, _ := strconv.ParseUint(f[k], 10, 64)
			t += v
		}
		procs[pid] = proc{ppid: ppid, ticks: t, kthr: flags&0x00200000 != 0}
	}
	ours := func(pid int) bool {
		for i := 0; i < 64 && pid > 1; i++ {
			if pid == self {
				return true
			}
			p, ok := procs[pid]
			if !ok {
				return false
			}
			pid = p.ppid
		}
		return false
	}
	snap := cpuSnapshot{}
	for pid, p := range procs {
		if p.kthr || ours(pid) {
			continue
		}
		snap[pid] = p.ticks
	}
	return snap
}

// since is the CPU time, in seconds, other processes used between s0 and s
// (taken interval apart). A process that exits hands its total to its
// parent's cutime/cstime when reaped, so what it had used before s0 is taken
// off again; the result is at most interval × CPUs.
func (s cpuSnapshot) since(s0 cpuSnapshot, interval time.Duration) float64 {
	if s == nil || s0 == nil {
		return 0
	}
	var t int64
	for pid, v := range s {
		t += int64(v) - int64(s0[pid]) // a process that started in between: all of it
	}
	for pid, v0 := range s0 {
		if _, ok := s[pid]; !ok {
			t -= int64(v0)
		}
	}
	secs := float64(t) / 100
	return math.Max(0, math.Min(secs, interval.Seconds()*float64(runtime.NumCPU())))
}

// waitIdle waits, at most max, until the other processes on the machine use
// less than a tenth of a CPU over a quarter of a second.
func waitIdle(max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		s0 := otherCPU()
		time.Sleep(250 * time.Millisecond)
		if otherCPU().since(s0, 250*time.Millisecond) < 0.025 || time.Now().After(deadline) {
			return
		}
	}
}

// ext4Facts describes the ext4 filesystem holding dir: its device, whether
// it has a journal and whether it is mounted with discard, which change how
// fast metadata operations are (without a journal, ext4 skips recently
// deleted inodes when it allocates one, which makes creates after mass
// deletes slow).
func ext4Facts(dir string) string {
	best, source := "", ""
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) || fields[sep+1] != "ext4" {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best, source = mp, fields[sep+2]
		}
	}
	if source == "" {
		return ""
	}
	dev := filepath.Base(source)
	var facts []string
	facts = append(facts, "on "+source)
	if m, _ := filepath.Glob("/proc/fs/jbd2/" + dev + "-*"); len(m) > 0 {
		facts = append(facts, "journal")
	} else {
		facts = append(facts, "no journal")
	}
	if b, err := os.ReadFile("/proc/fs/ext4/" + dev + "/options"); err == nil {
		for _, o := range strings.Fields(string(b)) {
			if o == "discard" {
				facts = append(facts, "discard")
			}
		}
	}
	return ", " + strings.Join(facts, ", ")
}
