// Command bench is sievefs's side-by-side benchmark harness (issue 4).
//
// Over the same lower tree, and in one interleaved run (A B C, B C A, C A B …), it
// measures the lower directory itself (native), sievefs with passthrough,
// sievefs with --cache watch, sievefs with --passthrough off, sievefs with a
// policy of 10 rules, go-fuse's loopback example (built from the module cache
// at the go-fuse version of go.mod) as the peer, and bench/loopback-nopt as
// the peer of --passthrough off; on an ext4 lower (a new ext4 in an image
// file, or with -ext4 dir a directory on the disk) and on a tmpfs it mounts. It writes the medians and their ratios to native and
// to the peer, the daemons' CPU time and peak RSS, the machine and the
// versions to docs/benchmarks.md, and a chart of the ratios to native to
// docs/benchmarks.png (drawn by ./bench/chart, a separate module that uses
// gonum.org/v1/plot).
//
// Run it as root from the repository root:
//
//	go run ./bench              # full run, ~30 minutes
//	go run ./bench -quick       # small sizes, ~3 minutes
//	go run ./bench -render results.json   # redo the report from a -json file
//	go run ./bench -passthrough-hp /path/to/passthrough_hp   # add libfuse's C peer (built from source, never committed)
//
// It needs fio (Debian: apt-get install fio), tar, find, xargs and cat.
// Every mount is made under one temporary directory and is unmounted at the
// end, on failure and on SIGINT/SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sievefs/sievefs"
)

// Kind is how a configuration serves the tree.
type Kind int

const (
	Native        Kind = iota // the lower directory itself
	Sievefs                   // sievefs mount [Args] LOWER MOUNTPOINT
	Loopback                  // go-fuse's example/loopback [Args] MOUNTPOINT LOWER
	LoopbackNoPT              // ./bench/loopback-nopt MOUNTPOINT LOWER: the same, passthrough declined
	PassthroughHP             // libfuse's example/passthrough_hp [Args] LOWER MOUNTPOINT (-passthrough-hp)
)

// noPassthroughHP is the NA of the passthrough_hp configuration until
// -passthrough-hp names a binary.
const noPassthroughHP = "needs -passthrough-hp PATH (libfuse's example/passthrough_hp, built from source)"

// Config is one column of the comparison.
type Config struct {
	Name  string   // short name, used in logs, JSON and file names
	Label string   // column title in the report
	Kind  Kind     // how it is mounted
	Args  []string // extra command-line arguments of the daemon; "{bench}" is the bench directory
	// NA, when set, keeps the configuration out of the run: the report shows
	// this text in its column instead. Deleting it is all it takes to run it.
	NA   string
	Peer bool // the reference for the "×peer" ratios
	// Against names the peer this configuration's "×peer" ratios use
	// instead of the one marked Peer.
	Against string
	Bin     string // the daemon's binary, for a configuration not built here
}

// configs are the columns, in the order they run within each repetition.
// A configuration with an NA field is left out of the run.
var configs = []Config{
	{Name: "native", Label: "native", Kind: Native},
	{Name: "sievefs", Label: "sievefs", Kind: Sievefs},
	{Name: "sievefs-watch", Label: "sievefs --cache watch", Kind: Sievefs, Args: []string{"--cache", "watch"}},
	{Name: "sievefs-nopt", Label: "sievefs --passthrough off", Kind: Sievefs, Args: []string{"--passthrough", "off"}, Against: "loopback-nopt"},
	{Name: "sievefs-policy10", Label: "sievefs + 10 rules", Kind: Sievefs, Args: []string{"--policy", "{bench}/policy10.yaml"}},
	{Name: "loopback", Label: "go-fuse loopback (peer)", Kind: Loopback, Args: []string{"-q", "-directmountstrict"}, Peer: true},
	{Name: "loopback-nopt", Label: "go-fuse loopback, passthrough off (peer of --passthrough off)", Kind: LoopbackNoPT},
	{Name: "passthrough_hp", Label: "libfuse passthrough_hp (C peer)", Kind: PassthroughHP, Args: []string{"--foreground"}, NA: noPassthroughHP},
}

// Sizes are the knobs that -quick changes.
type Sizes struct {
	SeqFile     int64         // the file read by the read workloads
	WriteFile   int64         // the file written by the sequential write
	RandWFile   int64         // the file overwritten by the random write
	TimeBased   time.Duration // runtime of the time-based fio jobs
	MetaFiles   int           // files of create/stat/ls/find/unlink
	MetaDirs    int           // directories they are spread over
	OpenClose   int           // open+close pairs
	SmallFiles  int           // files of the find | xargs cat tree
	SmallMaxLen int           // their largest size (sizes are spread up to it)
	TarSource   string        // directory tarred for untar/rm -rf ("" = GOROOT/src/cmd)
}

var fullSizes = Sizes{
	SeqFile:     1 << 30,
	WriteFile:   1 << 30,
	RandWFile:   512 << 20,
	TimeBased:   3 * time.Second,
	MetaFiles:   20000,
	MetaDirs:    20,
	OpenClose:   100000,
	SmallFiles:  5000,
	SmallMaxLen: 16 << 10,
}

var quickSizes = Sizes{
	SeqFile:     128 << 20,
	WriteFile:   128 << 20,
	RandWFile:   64 << 20,
	TimeBased:   500 * time.Millisecond,
	MetaFiles:   2000,
	MetaDirs:    10,
	OpenClose:   10000,
	SmallFiles:  1000,
	SmallMaxLen: 16 << 10,
}

func main() {
	var (
		reps      = flag.Int("reps", 3, "repetitions of each workload and configuration (at least 3; medians are reported)")
		quick     = flag.Bool("quick", false, "small sizes and short runs (~3 minutes) instead of the full run (~30 minutes)")
		lowersF   = flag.String("lowers", "ext4,tmpfs", "lower filesystems to run on: ext4 (see -ext4), tmpfs (mounted in the temporary directory), and NAME=DIR for a filesystem already mounted on DIR (an sshfs or GlusterFS mount made by internal/testenv; the rows are named NAME)")
		ext4F     = flag.String("ext4", "image", "the ext4 lower: image (a new ext4, with a journal, in an image file under -dir on a loop device) or dir (a directory under -dir, on the filesystem that holds it)")
		configsF  = flag.String("configs", "", "comma-separated configurations to run (default all): "+configNames())
		worksF    = flag.String("workloads", "", "comma-separated workload groups to run (default all): "+groupNames())
		dir       = flag.String("dir", "/var/tmp", "where the temporary directory (ext4 image or lower, mountpoints, binaries) is made; on a disk, not a tmpfs")
		mdOut     = flag.String("md", "docs/benchmarks.md", "report to write, relative to the repository root (\"\" for none)")
		pngOut    = flag.String("png", "docs/benchmarks.png", "chart to write, relative to the repository root (\"\" for none)")
		jsonOut   = flag.String("json", "", "also write every sample to this JSON file (for -render)")
		render    = flag.String("render", "", "do not run: write the report and chart from this -json file")
		idle      = flag.Duration("wait-idle", 0, "before each run, wait up to this long for the other processes on the machine to use under a tenth of a CPU (0: do not wait)")
		tarSource = flag.String("tree", "", "source tree to tar for untar/rm -rf (default: GOROOT/src/cmd, or the go-fuse module directory with -quick)")
		hpBin     = flag.String("passthrough-hp", "", "libfuse's example/passthrough_hp binary, built from source: adds the passthrough_hp configuration")
	)
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench [flags]   (as root, from the repository root)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	root, err := repoRoot()
	if err != nil {
		fatalf("%v", err)
	}
	if *render != "" {
		res, err := loadResults(*render)
		if err != nil {
			fatalf("%v", err)
		}
		if err := writeReports(root, res, *mdOut, *pngOut); err != nil {
			fatalf("%v", err)
		}
		return
	}
	if *reps < 3 {
		fatalf("-reps %d: at least 3 repetitions are needed for a median", *reps)
	}
	if os.Geteuid() != 0 {
		fatalf("run as root: the harness mounts FUSE filesystems and a tmpfs, and drops caches")
	}
	sizes := fullSizes
	if *quick {
		sizes = quickSizes
	}
	sizes.TarSource = *tarSource
	cfgs, err := selectConfigs(*configsF, *hpBin)
	if err != nil {
		fatalf("%v", err)
	}
	groups, err := selectGroups(*worksF)
	if err != nil {
		fatalf("%v", err)
	}
	var lowers []string
	givenDirs := map[string]string{} // NAME=DIR lowers
	for _, l := range strings.Split(*lowersF, ",") {
		l = strings.TrimSpace(l)
		name, dir, given := strings.Cut(l, "=")
		switch {
		case l == "ext4", l == "tmpfs":
			lowers = append(lowers, l)
		case given && name != "" && name != "ext4" && name != "tmpfs" && filepath.IsAbs(dir):
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				fatalf("-lowers %s: %s is not a directory", l, dir)
			}
			lowers = append(lowers, name)
			givenDirs[name] = dir
		case l == "":
		default:
			fatalf("-lowers: unknown lower %q (want ext4, tmpfs or NAME=/absolute/dir)", l)
		}
	}
	if len(lowers) == 0 {
		fatalf("-lowers: nothing to run on")
	}
	if *ext4F != "image" && *ext4F != "dir" {
		fatalf("-ext4 %q: want image or dir", *ext4F)
	}
	for _, tool := range []string{"fio", "tar", "find", "xargs", "cat", "rm", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			fatalf("%s not found: install it (Debian: apt-get install -y fio)", tool)
		}
	}

	h := &Harness{
		root:      root,
		bench:     filepath.Join(root, "bench"),
		sizes:     sizes,
		reps:      *reps,
		quick:     *quick,
		configs:   cfgs,
		groups:    groups,
		lowers:    lowers,
		givenDirs: givenDirs,
		ext4Image: *ext4F == "image",
		reg:       newRegistry(),
		idle:      *idle,
	}
	h.tmp, err = os.MkdirTemp(*dir, "sievefs-bench-")
	if err != nil {
		fatalf("temporary directory: %v", err)
	}
	h.reg.tmp = h.tmp

	// SIGINT/SIGTERM: stop the workload, unmount everything, remove the
	// temporary directory, exit. The daemons get their own process group, so
	// a ^C at the terminal reaches only this process, which unmounts them.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		logf("%v: stopping, unmounting everything", sig)
		h.reg.cleanupAfterSignal()
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()

	res, err := h.run()
	h.reg.checkpoint()
	h.reg.cleanup()
	if err != nil {
		fatalf("%v", err)
	}
	res.Meta.Command = "go run ./bench " + strings.Join(os.Args[1:], " ")
	res.Meta.Command = strings.TrimSpace(res.Meta.Command)
	if *jsonOut != "" {
		if err := saveResults(*jsonOut, res); err != nil {
			fatalf("%v", err)
		}
		logf("samples written to %s", *jsonOut)
	}
	if err := writeReports(root, res, *mdOut, *pngOut); err != nil {
		fatalf("%v", err)
	}
}

// Harness holds one run.
type Harness struct {
	root, bench, tmp string
	sizes            Sizes
	reps             int
	quick            bool
	configs          []Config
	groups           []*Group
	lowers           []string
	givenDirs        map[string]string // lower name → the mounted filesystem it runs in (-lowers NAME=DIR)
	ext4Image        bool              // the ext4 lower is a filesystem of its own (-ext4 image)
	reg              *registry
	idle             time.Duration

	sievefsBin, loopbackBin, loopbackNoPTBin string
	tarball                                  string
	tarEntries                               int
	meta                                     Meta
	samples                                  []Sample
}

func (h *Harness) run() (*Results, error) {
	start := time.Now()
	s0 := otherCPU()
	time.Sleep(time.Second)
	if busy := otherCPU().since(s0, time.Second); busy > 0.1 {
		logf("warning: other processes are using %.0f%% of a CPU: the results will be noisy (see -wait-idle)", 100*busy)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		h.meta.LoadAtStart = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if err := h.build(); err != nil {
		return nil, err
	}
	if err := h.collectMeta(); err != nil {
		return nil, err
	}
	if err := h.makeTarball(); err != nil {
		return nil, err
	}
	for _, lower := range h.lowers {
		h.reg.checkpoint()
		if err := h.runLower(lower); err != nil {
			return nil, err
		}
	}
	h.meta.Duration = time.Since(start).Round(time.Second).String()
	h.meta.Finished = time.Now().UTC().Format(time.RFC3339)
	return h.results(), nil
}

// build compiles sievefs from this tree and go-fuse's loopback example from
// the module cache (fetched through the Go module proxy if missing), at the
// go-fuse version that go.mod requires.
func (h *Harness) build() error {
	bin := filepath.Join(h.tmp, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	h.sievefsBin = filepath.Join(bin, "sievefs")
	h.loopbackBin = filepath.Join(bin, "loopback")
	h.loopbackNoPTBin = filepath.Join(bin, "loopback-nopt")
	logf("building sievefs and go-fuse's loopback into %s", bin)
	if out, err := h.goCmd("build", "-o", h.sievefsBin, "./cmd/sievefs"); err != nil {
		return fmt.Errorf("build sievefs: %v\n%s", err, out)
	}
	if out, err := h.goCmd("build", "-o", h.loopbackBin, "github.com/hanwen/go-fuse/v2/example/loopback"); err != nil {
		return fmt.Errorf("build go-fuse loopback: %v\n%s", err, out)
	}
	if out, err := h.goCmd("build", "-o", h.loopbackNoPTBin, "./bench/loopback-nopt"); err != nil {
		return fmt.Errorf("build loopback-nopt: %v\n%s", err, out)
	}
	return nil
}

func (h *Harness) goCmd(args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = h.root
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// runLower prepares one lower, mounts every configuration on it and runs the
// workload groups, interleaved: for each group, for each repetition, every
// configuration in turn, each repetition starting one configuration later
// than the one before. A run is not independent of the one just before it:
// on these machines a sequential write right after native's ran about 30%
// slower than the same write one run later, whoever made it, and with a
// fixed order that cost fell on the same configuration every time.
func (h *Harness) runLower(name string) error {
	l, err := h.prepareLower(name)
	if err != nil {
		return err
	}
	defer h.teardownLower(l)
	for _, g := range h.groups {
		h.reg.checkpoint()
		if g.Prepare != nil {
			if err := g.Prepare(h, l); err != nil {
				return fmt.Errorf("%s: prepare %s: %w", name, g.Name, err)
			}
		}
	}
	if err := syncAll(); err != nil {
		return err
	}
	// Each FUSE configuration is mounted for its run only: a daemon mounted
	// over the same tree during another configuration's run could tax it
	// (sievefs watches the directories it has searched, and a write there
	// costs the writer a fanotify event).
	facts := map[string]bool{}
	for _, g := range h.groups {
		for rep := 1; rep <= h.reps; rep++ {
			for k := range h.configs {
				c := &h.configs[(k+rep-1)%len(h.configs)]
				if c.NA != "" {
					continue
				}
				h.reg.checkpoint()
				r := &Run{h: h, l: l, c: c, rep: rep, root: l.lowerDir}
				if c.Kind != Native {
					d, err := h.mount(l, c)
					if err != nil {
						r.fail(g, fmt.Errorf("mount: %w", err))
						continue
					}
					l.daemons[c.Name] = d
					r.d, r.root = d, d.mnt
					if !facts[c.Name] {
						facts[c.Name] = h.recordMountFacts(l, d)
					}
				}
				if h.idle > 0 {
					waitIdle(h.idle)
				}
				err := g.Run(r)
				if r.d != nil {
					if aerr := r.d.alive(); aerr != nil && err == nil {
						err = aerr
					}
					if serr := r.d.stop(); serr != nil && err == nil {
						err = serr
					}
					delete(l.daemons, c.Name)
				}
				if err != nil {
					r.fail(g, err)
				}
				// Whatever a run wrote goes to disk before the next one starts.
				if err := syncAll(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// recordMountFacts notes whether a sievefs mount uses passthrough and
// watches the lower tree, as its status reports, and says whether it is
// done: a daemon whose mount has just appeared may not answer status yet,
// and the next mount of the configuration is asked again.
func (h *Harness) recordMountFacts(l *Lower, d *daemon) bool {
	if d.cfg.Kind != Sievefs {
		return true
	}
	out, err := exec.Command(h.sievefsBin, "status", "--json", d.mnt).Output()
	var sts []sievefs.Status // one per mount asked about
	if err == nil {
		err = json.Unmarshal(out, &sts)
	}
	if err != nil || len(sts) != 1 {
		logf("%s on %s: sievefs status --json: %v (asked again at its next mount)", d.cfg.Name, l.name, err)
		return false
	}
	st := sts[0]
	h.meta.Passthrough = append(h.meta.Passthrough, fmt.Sprintf("%s on %s: passthrough active=%v, cache %s watch=%v",
		d.cfg.Name, l.name, st.Passthrough.Active, st.Cache.Mode, st.Cache.Watch))
	return true
}

// Run is one configuration's turn in one repetition of one group.
type Run struct {
	h    *Harness
	l    *Lower
	c    *Config
	rep  int
	d    *daemon // nil for native
	root string  // the mountpoint, or the lower directory for native
}

// work is a name unique to this run, for the directories and files it makes.
func (r *Run) work(prefix string) string {
	return filepath.Join(r.root, fmt.Sprintf("%s-%s-%d", prefix, r.c.Name, r.rep))
}

// measure runs one timed phase and records it as a sample of row: f returns
// the rate (higher is better). For a FUSE configuration it also records the
// daemon's CPU time (utime+stime) over the phase and its peak RSS (VmHWM,
// reset before the phase).
func (r *Run) measure(row string, f func() (float64, error)) error {
	r.h.reg.checkpoint()
	var cpu0 float64
	others := otherCPU()
	if r.d != nil {
		resetPeakRSS(r.d.pid())
		cpu0, _ = cpuSeconds(r.d.pid())
	}
	t0 := time.Now()
	v, err := f()
	secs := time.Since(t0).Seconds()
	s := Sample{Lower: r.l.name, Row: row, Config: r.c.Name, Rep: r.rep, Value: v, Seconds: secs}
	s.OtherCPU = otherCPU().since(others, time.Since(t0))
	if r.d != nil {
		cpu1, _ := cpuSeconds(r.d.pid())
		s.CPU = cpu1 - cpu0
		s.PeakRSSKiB, _ = peakRSSKiB(r.d.pid())
	}
	if err != nil {
		s.Err = err.Error()
		s.Value = 0
	}
	r.h.samples = append(r.h.samples, s)
	rw := rowByName(row)
	if err != nil {
		logf("%-5s %-15s rep %d %-16s FAILED: %v", r.l.name, row, r.rep, r.c.Name, err)
	} else if r.d != nil {
		logf("%-5s %-15s rep %d %-16s %12.1f %-7s (%.2fs; daemon cpu %.2fs, peak rss %d MiB)%s", r.l.name, row, r.rep, r.c.Name, v, rw.Unit, secs, s.CPU, s.PeakRSSKiB>>10, noise(s))
	} else {
		logf("%-5s %-15s rep %d %-16s %12.1f %-7s (%.2fs)%s", r.l.name, row, r.rep, r.c.Name, v, rw.Unit, secs, noise(s))
	}
	return err
}

// noiseShare is the share of one CPU that other processes used during a
// sample above which the sample is flagged as disturbed.
const noiseShare = 0.2

func noise(s Sample) string {
	if s.Seconds > 0 && s.OtherCPU/s.Seconds > noiseShare {
		return fmt.Sprintf(" [other processes used %.0f%% of a CPU]", 100*s.OtherCPU/s.Seconds)
	}
	return ""
}

// fail records an error for every row of g that this run did not record.
func (r *Run) fail(g *Group, err error) {
	for _, row := range g.Rows {
		found := false
		for _, s := range r.h.samples {
			if s.Lower == r.l.name && s.Row == row && s.Config == r.c.Name && s.Rep == r.rep {
				found = true
				break
			}
		}
		if !found {
			r.h.samples = append(r.h.samples, Sample{Lower: r.l.name, Row: row, Config: r.c.Name, Rep: r.rep, Err: err.Error()})
			logf("%-5s %-15s rep %d %-16s FAILED: %v", r.l.name, row, r.rep, r.c.Name, err)
		}
	}
}

// command runs a program in dir as a child this harness can kill, and
// returns its combined output.
func (r *Run) command(ctx context.Context, dir string, name string, args ...string) (string, error) {
	return r.h.reg.run(ctx, dir, name, args...)
}

// selectConfigs returns the configurations named in list (all when empty),
// with passthrough_hp's binary set to hp (left out when hp is empty).
func selectConfigs(list, hp string) ([]Config, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var out []Config
	for _, c := range configs {
		if c.Kind == PassthroughHP && hp != "" {
			c.NA, c.Bin = "", hp
		}
		if len(want) == 0 || want[c.Name] {
			out = append(out, c)
			delete(want, c.Name)
		}
	}
	for n := range want {
		return nil, fmt.Errorf("-configs: unknown configuration %q (have %s)", n, configNames())
	}
	if len(out) == 0 {
		return nil, errors.New("-configs: nothing to run")
	}
	return out, nil
}

func configNames() string {
	var n []string
	for _, c := range configs {
		n = append(n, c.Name)
	}
	return strings.Join(n, ",")
}

// repoRoot finds the sievefs module root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/sievefs/sievefs\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the sievefs repository (no go.mod of github.com/sievefs/sievefs above the working directory)")
		}
		dir = parent
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// cleanupHook is run by fatalf before it exits (set once a registry exists).
var cleanupHook func()

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: %s\n", fmt.Sprintf(format, args...))
	if cleanupHook != nil {
		cleanupHook()
	}
	os.Exit(1)
}
