package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Meta describes the machine, the versions and the run.
type Meta struct {
	Started     string
	Finished    string
	Duration    string
	Command     string
	Mode        string
	Reps        int
	NProc       int
	MemTotal    string
	Kernel      string
	CPU         string
	Go          string
	Sievefs     string
	GoFuse      string
	Fio         string
	Lowers      []string
	Tree        string
	Sizes       string
	Passthrough []string
	LoadAtStart string
	WaitIdle    string
}

// Sample is one measurement: one row, one configuration, one repetition.
type Sample struct {
	Lower      string
	Row        string
	Config     string
	Rep        int
	Value      float64 // the rate (Row's unit); higher is better
	Seconds    float64 // wall time of the timed phase
	CPU        float64 `json:",omitempty"` // daemon utime+stime over the phase, seconds
	PeakRSSKiB int64   `json:",omitempty"` // daemon VmHWM over the phase
	OtherCPU   float64 // CPU time other processes on the machine used during the phase, seconds
	Err        string  `json:",omitempty"`
}

// Results is everything a report is made from (and what -json saves).
type Results struct {
	Meta    Meta
	Configs []Config
	Rows    []Row
	Lowers  []string
	Samples []Sample
}

func (h *Harness) collectMeta() error {
	m := &h.meta
	m.Started = time.Now().UTC().Format(time.RFC3339)
	m.Reps = h.reps
	m.WaitIdle = "off"
	if h.idle > 0 {
		m.WaitIdle = "up to " + h.idle.String()
	}
	m.Mode = "full"
	if h.quick {
		m.Mode = "quick"
	}
	m.NProc = runtime.NumCPU()
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kib float64
				fmt.Sscan(rest, &kib)
				m.MemTotal = fmt.Sprintf("%.1f GiB", kib/(1<<20))
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Machine[:])
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	m.Go, _ = h.goCmd("version")
	if out, err := exec.Command("git", "-C", h.root, "describe", "--always", "--dirty", "--tags").Output(); err == nil {
		m.Sievefs = strings.TrimSpace(string(out))
	} else {
		m.Sievefs = "unknown (no git)"
	}
	m.GoFuse, _ = h.goCmd("list", "-m", "-f", "{{.Path}} {{.Version}}", "github.com/hanwen/go-fuse/v2")
	if out, err := exec.Command("fio", "--version").Output(); err == nil {
		m.Fio = strings.TrimSpace(string(out))
	}
	s := h.sizes
	m.Sizes = fmt.Sprintf("read file %s, sequential write %s, random-write file %s, time-based fio jobs %v; "+
		"%d files in %d directories for create/stat/ls/find/unlink; %d open+close; %d small files (1 B–%d KiB) for find | xargs cat",
		mib(s.SeqFile), mib(s.WriteFile), mib(s.RandWFile), s.TimeBased, s.MetaFiles, s.MetaDirs, s.OpenClose, s.SmallFiles, s.SmallMaxLen>>10)
	return nil
}

func mib(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

func (h *Harness) results() *Results {
	res := &Results{Meta: h.meta, Configs: h.configs, Lowers: h.lowers, Samples: h.samples}
	for _, g := range h.groups {
		for _, r := range g.Rows {
			res.Rows = append(res.Rows, rowByName(r))
		}
	}
	return res
}

func saveResults(path string, res *Results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func loadResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &res, nil
}

// stat is the summary of one cell.
type stat struct {
	n, failed    int
	median       float64
	spread       float64 // (max-min)/median
	cpu          float64 // median daemon CPU seconds
	peakRSSKiB   int64   // max over the repetitions
	firstFailure string
	disturbed    int // samples during which other processes used more than noiseShare of a CPU
}

func (res *Results) cell(lower, row, cfg string) stat {
	var vals, cpus []float64
	var st stat
	for _, s := range res.Samples {
		if s.Lower != lower || s.Row != row || s.Config != cfg {
			continue
		}
		if s.Err != "" {
			st.failed++
			if st.firstFailure == "" {
				st.firstFailure = s.Err
			}
			continue
		}
		vals = append(vals, s.Value)
		cpus = append(cpus, s.CPU)
		if s.Seconds > 0 && s.OtherCPU/s.Seconds > noiseShare {
			st.disturbed++
		}
		if s.PeakRSSKiB > st.peakRSSKiB {
			st.peakRSSKiB = s.PeakRSSKiB
		}
	}
	st.n = len(vals)
	if st.n == 0 {
		st.median = math.NaN()
		return st
	}
	st.median = median(vals)
	st.cpu = median(cpus)
	mn, mx := vals[0], vals[0]
	for _, v := range vals {
		mn, mx = math.Min(mn, v), math.Max(mx, v)
	}
	if st.median > 0 {
		st.spread = (mx - mn) / st.median
	}
	return st
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (res *Results) peer() string {
	for _, c := range res.Configs {
		if c.Peer && c.NA == "" {
			return c.Name
		}
	}
	return ""
}

// peerOf returns the configuration c's "×peer" ratios use: its Against
// when that ran, else the peer; "" for a peer itself.
func (res *Results) peerOf(c Config) string {
	if c.Kind == Loopback || c.Kind == LoopbackNoPT || c.Kind == PassthroughHP {
		return ""
	}
	if c.Against != "" {
		for _, o := range res.Configs {
			if o.Name == c.Against && o.NA == "" {
				return o.Name
			}
		}
	}
	return res.peer()
}

func (res *Results) hasNative() bool {
	for _, c := range res.Configs {
		if c.Kind == Native {
			return true
		}
	}
	return false
}

func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

func fmtRatio(r float64) string {
	if math.IsNaN(r) {
		return "–"
	}
	return fmt.Sprintf("%.2f", r)
}

func fmtValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 1000:
		s := fmt.Sprintf("%.0f", v)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func (st stat) String() string {
	if st.n == 0 {
		if st.failed > 0 {
			return "failed"
		}
		return "–"
	}
	s := fmtValue(st.median)
	if st.spread >= 0.005 {
		s += fmt.Sprintf(" ±%.0f%%", 100*st.spread/2)
	}
	if st.failed > 0 {
		s += fmt.Sprintf(" (%d failed)", st.failed)
	}
	if st.disturbed > 0 {
		s += " †"
	}
	return s
}

// writeReports writes the Markdown report and the chart.
func writeReports(root string, res *Results, mdOut, pngOut string) error {
	if mdOut != "" {
		p := mdOut
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(res.markdown(pngOut, filepath.Dir(p), root)), 0o644); err != nil {
			return err
		}
		logf("report written to %s", p)
	}
	if pngOut != "" {
		p := pngOut
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		if err := res.chart(root, p); err != nil {
			logf("warning: no chart: %v", err)
		} else {
			logf("chart written to %s", p)
		}
	}
	return nil
}

func (res *Results) markdown(pngOut, mdDir, root string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := res.Meta
	w("# Benchmarks\n\n")
	w("This file is written by the benchmark harness in [`bench/`](../bench/); rerun it rather than editing by hand.\n")
	w("It compares, over the same lower tree and in one interleaved run (every configuration in turn, repetition after\n")
	w("repetition, each repetition starting one configuration later, so that no configuration always runs right after\n")
	w("the same one), the lower directory itself (native), sievefs with passthrough, sievefs with `--cache watch`, sievefs\n")
	w("with `--passthrough off`,\n")
	w("sievefs with a policy of 10 rules, go-fuse's loopback example as the peer, and go-fuse's loopback with passthrough\n")
	w("declined as the peer of `--passthrough off`. Each FUSE configuration is mounted for its own runs only. Every number\n")
	w("is a rate (higher is better), the median of %d repetitions; `×native` and `×peer` are ratios of medians to native\n", m.Reps)
	w("and to the peer (go-fuse loopback; for `--passthrough off`, the loopback with passthrough off) in the same run, so\n")
	w("1.00 means as fast and 0.50 half as fast. `±` is half the spread\n")
	w("(max − min) of the repetitions around the median.\n\n")
	if pngOut != "" {
		rel, abs := pngOut, pngOut
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(root, pngOut)
		}
		if r, err := filepath.Rel(mdDir, abs); err == nil {
			rel = r
		}
		w("![Ratios to native, by workload, on an ext4 and a tmpfs lower](%s)\n\n", rel)
	}

	w("## How to run\n\n")
	w("As root, from the repository root, with fio installed (`apt-get install -y fio`):\n\n")
	w("```sh\n")
	w("go run ./bench                 # full run: %d repetitions, ~30 minutes; writes docs/benchmarks.md and .png\n", 3)
	w("go run ./bench -quick          # small sizes and short runs, ~3 minutes\n")
	w("go run ./bench -workloads meta,openclose -lowers tmpfs -configs native,sievefs,loopback\n")
	w("go run ./bench -json /var/tmp/bench.json   # also keep every sample; -render FILE redoes the report from it\n")
	w("go run ./bench -wait-idle 30s  # on a shared machine: before each run, wait for the others to be idle\n")
	w("```\n\n")
	w("The harness builds `./cmd/sievefs` and go-fuse's `example/loopback` (at the go-fuse version in `go.mod`, from the\n")
	w("module cache or the Go module proxy) into a temporary directory under `-dir` (default `/var/tmp`, on the disk).\n")
	w("The ext4 lower is a new ext4 filesystem made there by `mkfs.ext4` (its defaults, so with a journal; inode tables\n")
	w("and journal initialised at once, not in the background) in a sparse image file, on a loop device with direct I/O\n")
	w("(so the image file is not cached twice): its rows do not depend on how the machine's own disk is formatted or on\n")
	w("what it deleted lately. `-ext4 dir` runs on a directory under `-dir` instead. The tmpfs lower is a tmpfs mounted\n")
	w("there. Every mount is made in that directory and\n")
	w("unmounted at the end, on failure and on SIGINT/SIGTERM (daemons are stopped by pid: SIGTERM, then after 15 s a\n")
	w("lazy unmount and SIGKILL). The chart is drawn by [`bench/chart`](../bench/chart/), a separate Go module that uses\n")
	w("gonum.org/v1/plot, so the sievefs module does not depend on it. `go run ./bench -h` lists the flags.\n\n")
	w("Over lowers on other machines (GlusterFS, sshfs) see [distributed.md](distributed.md), measured apart.\n\n")
	w("Configurations (the `configs` table in `bench/main.go`; each has a list of extra daemon arguments):\n\n")
	for _, c := range res.Configs {
		switch c.Kind {
		case Native:
			w("- **%s**: the lower directory itself.\n", c.Label)
		case Sievefs:
			args := strings.ReplaceAll(strings.Join(c.Args, " "), "{bench}", "bench")
			if args != "" {
				args += " "
			}
			w("- **%s**: `sievefs mount %sLOWER MNT`", c.Label, args)
			if c.NA != "" {
				w(" — %s: not run. Delete the `NA` field of its line once `--policy` exists; [`bench/policy10.yaml`](../bench/policy10.yaml) is the policy", c.NA)
			}
			w(".\n")
		case Loopback:
			w("- **%s**: `loopback %s MNT LOWER`, go-fuse's `example/loopback`. In this go-fuse version it has no passthrough\n", c.Label, strings.Join(c.Args, " "))
			w("  flag: it uses passthrough whenever the kernel and its privileges allow (here: root), and 1 s entry and attribute\n")
			w("  timeouts (sievefs's default `--cache auto` where it cannot watch the lower tree).\n")
		case PassthroughHP:
			w("- **%s**: `passthrough_hp %s LOWER MNT`, libfuse's `example/passthrough_hp`, the fastest C peer, built\n", c.Label, strings.Join(c.Args, " "))
			w("  from source and given with `-passthrough-hp`; it caches entries and attributes for a day and uses passthrough.\n")
			if c.NA != "" {
				w("  Not run: %s.\n", c.NA)
			}
		case LoopbackNoPT:
			w("- **%s**: [`bench/loopback-nopt`](../bench/loopback-nopt/main.go), go-fuse's loopback filesystem with the\n", c.Label)
			w("  options above whose files decline passthrough, so that the daemon serves every read and write: the peer of\n")
			w("  sievefs `--passthrough off` (its `×peer` column).\n")
		}
	}
	w("\nWorkloads (data: fio with `--ioengine=psync` or `mmap`, `--direct=0`, `--invalidate=0`, `--fallocate=none`;\n")
	w("metadata: Go, in process, one system call per file; the tree rows: the real tools):\n\n")
	w("- sequential read cold: `sync; echo 3 > /proc/sys/vm/drop_caches`, then one pass of 1 MiB reads over the read file;\n")
	w("  on tmpfs this drops only the FUSE side's caches. Warm: the file is read once first, then read for the fio runtime.\n")
	w("- random 4 KiB read with 1 and 4 jobs, and through mmap: over the read file, warm.\n")
	w("- sequential 1 MiB write: a new file of the size below, without fsync (page cache), deleted afterwards.\n")
	w("- random 4 KiB write: overwriting an existing file, warm, for the fio runtime.\n")
	w("- create: `open(O_CREAT|O_EXCL)` + `close` of empty files, relative to a directory descriptor; stat: `fstatat` by\n")
	w("  path, cold (after dropping caches) and then warm; `ls -f`: `getdents64` of each directory after dropping caches; `ls -l`: the same, with an `lstat` of each entry;\n")
	w("  find: a walk with `getdents64` and `d_type`, warm; unlink: `unlinkat` of every file and `rmdir`.\n")
	w("  \"Warm\" means right after a pass that filled the kernel's caches. With 1 s entry and attribute timeouts\n")
	w("  (the loopbacks' and sievefs's default `--cache auto`), entries older than 1 s are revalidated with the daemon,\n")
	w("  so a FUSE pass over 20,000 files that takes longer than that is warm only in name; with `--cache watch` sievefs\n")
	w("  watches the lower tree and lets the kernel cache for an hour.\n")
	w("- open+close: `open(O_RDONLY)` + `close` of one file by path, in a loop.\n")
	w("- untar: `tar -xf` of a tarball of a real source tree (read from the ext4 temporary directory) into the mount; rm -rf:\n")
	w("  `rm -rf` of the untarred tree after a `sync`.\n")
	w("- find | xargs cat: `find . -type f -print0 | xargs -0 cat > /dev/null` over a tree of small files, warm (run once first).\n\n")
	w("After every run the harness calls `sync` (outside the timing), so a run does not pay for the previous one's writeback.\n")
	w("It also records the CPU time that other processes on the machine (not the harness and its children, not kernel\n")
	w("threads) used during each timed phase: on a 2-CPU machine a concurrent build or test run halves what a workload\n")
	w("gets, so cells where that happened are marked †. Run it on a quiet machine, or with `-wait-idle`.\n\n")

	w("## This run\n\n")
	w("- Command: `%s`\n", m.Command)
	w("- Mode: %s, %d repetitions, started %s, took %s\n", m.Mode, m.Reps, m.Started, m.Duration)
	w("- Machine: %d CPUs (%s), %s RAM, %s\n", m.NProc, m.CPU, m.MemTotal, m.Kernel)
	w("- Versions: %s; sievefs `%s`; %s; %s\n", m.Go, m.Sievefs, m.GoFuse, m.Fio)
	w("- Lowers: %s\n", strings.Join(m.Lowers, "; "))
	w("- Source tree for untar: %s\n", m.Tree)
	w("- Sizes: %s\n", m.Sizes)
	var other, timed float64
	disturbed := 0
	for _, s := range res.Samples {
		if s.Err == "" {
			other += s.OtherCPU
			timed += s.Seconds
			if s.Seconds > 0 && s.OtherCPU/s.Seconds > noiseShare {
				disturbed++
			}
		}
	}
	w("- Quiet machine? Load average at the start %s. During the %.0f s of timed phases, other processes used %.1f CPU-seconds\n", m.LoadAtStart, timed, other)
	w("  (%.0f%% of one CPU); %d of %d samples ran while they used more than %.0f%% of a CPU (marked † in the tables).", 100*other/math.Max(timed, 1e-9), disturbed, len(res.Samples), 100*noiseShare)
	w(" Waiting for idle before each run (`-wait-idle`): %s.\n", m.WaitIdle)
	for _, l := range m.Lowers {
		if strings.Contains(l, "no journal") {
			w("- The ext4 lower has no journal. On such a filesystem creates right after mass deletes (the previous run's\n")
			w("  unlink or `rm -rf`) were seen to cost hundreds of µs of kernel CPU each, native included, probably because\n")
			w("  ext4 without a journal passes over recently deleted inodes when it allocates one (`recently_deleted()` in\n")
			w("  fs/ext4/ialloc.c). The ext4 create and untar rows then measure ext4 more than FUSE; the tmpfs rows show\n")
			w("  FUSE's cost.\n")
			break
		}
	}
	if len(m.Passthrough) > 0 {
		sort.Strings(m.Passthrough)
		w("- Passthrough and cache as `sievefs status` reported them: %s\n", strings.Join(m.Passthrough, "; "))
	}
	w("\n")

	for _, lower := range res.Lowers {
		w("## Results: %s lower\n\n", lower)
		res.resultsTable(&b, lower)
		w("\n")
	}

	w("## Daemon CPU time and peak RSS\n\n")
	w("CPU: the daemon's utime + stime (`/proc/PID/stat`) over the timed phase, median of the repetitions, in ms\n")
	w("(10 ms resolution). Peak RSS: `VmHWM` (`/proc/PID/status`) after the phase, reset before it\n")
	w("(`echo 5 > /proc/PID/clear_refs`), the largest of the repetitions, in MiB.\n\n")
	res.cpuTable(&b)
	w("\n")

	var fails []string
	for _, s := range res.Samples {
		if s.Err != "" {
			fails = append(fails, fmt.Sprintf("- %s, %s, %s, repetition %d: %s", s.Lower, s.Row, s.Config, s.Rep, oneLine(s.Err)))
		}
	}
	if len(fails) > 0 {
		w("## Failures\n\n%s\n\n", strings.Join(fails, "\n"))
	}

	w("## Targets\n\n")
	w("The `target` column is issue 4's target for sievefs with passthrough on that row, checked against this run:\n")
	w("passthrough data at ≥0.95× native for reads and mmap, ≥0.9× for sequential write, ≥0.8× for random write; on\n")
	w("metadata, faster than the peer, and warm stat and find at ≥1.0× native. ✓ met, ✗ not met.\n")
	return b.String()
}

// mdCell escapes the pipes of a table cell.
func mdCell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (res *Results) resultsTable(b *strings.Builder, lower string) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	native := res.hasNative()
	head := []string{"workload", "unit"}
	for _, c := range res.Configs {
		head = append(head, c.Label)
		if c.Kind == Native {
			continue
		}
		if native {
			head = append(head, "×native")
		}
		if res.peerOf(c) != "" {
			head = append(head, "×peer")
		}
		if c.Name == "sievefs" {
			head = append(head, "target")
		}
		if c.Kind == PassthroughHP {
			head = append(head, "sievefs ÷ it")
		}
	}
	w("| %s |\n", strings.Join(head, " | "))
	seps := make([]string, len(head))
	for i := range seps {
		seps[i] = "---:"
	}
	seps[0], seps[1] = "---", "---"
	w("|%s|\n", strings.Join(seps, "|"))
	for _, row := range res.Rows {
		nat := res.cell(lower, row.Name, "native")
		cells := []string{mdCell(row.Label), row.Unit}
		for _, c := range res.Configs {
			if c.NA != "" {
				cells = append(cells, c.NA)
				if c.Kind != Native {
					if native {
						cells = append(cells, "–")
					}
					if res.peerOf(c) != "" {
						cells = append(cells, "–")
					}
					if c.Kind == PassthroughHP {
						cells = append(cells, "–")
					}
				}
				continue
			}
			st := res.cell(lower, row.Name, c.Name)
			cells = append(cells, st.String())
			if c.Kind == Native {
				continue
			}
			rn := ratio(st.median, nat.median)
			rp := math.NaN()
			if native {
				cells = append(cells, fmtRatio(rn))
			}
			if p := res.peerOf(c); p != "" {
				rp = ratio(st.median, res.cell(lower, row.Name, p).median)
				cells = append(cells, fmtRatio(rp))
			}
			if c.Name == "sievefs" {
				cells = append(cells, targetCell(row.Target, rn, rp))
			}
			if c.Kind == PassthroughHP {
				cells = append(cells, fmtRatio(ratio(res.cell(lower, row.Name, "sievefs").median, st.median)))
			}
		}
		w("| %s |\n", strings.Join(cells, " | "))
	}
}

func targetCell(t Target, rn, rp float64) string {
	if t.MinNative == 0 && !t.BeatPeer {
		return ""
	}
	ok, known := true, true
	if t.MinNative > 0 {
		if math.IsNaN(rn) {
			known = false
		} else if rn < t.MinNative {
			ok = false
		}
	}
	if t.BeatPeer {
		if math.IsNaN(rp) {
			known = false
		} else if rp <= 1 {
			ok = false
		}
	}
	mark := "✓"
	switch {
	case !ok:
		mark = "✗"
	case !known:
		mark = "?"
	}
	return t.String() + " " + mark
}

func (res *Results) cpuTable(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	var fuse []Config
	for _, c := range res.Configs {
		if c.Kind != Native && c.NA == "" {
			fuse = append(fuse, c)
		}
	}
	head := []string{"workload", "lower"}
	for _, c := range fuse {
		head = append(head, c.Label+" CPU ms", "peak RSS MiB")
	}
	w("| %s |\n", strings.Join(head, " | "))
	seps := make([]string, len(head))
	for i := range seps {
		seps[i] = "---:"
	}
	seps[0], seps[1] = "---", "---"
	w("|%s|\n", strings.Join(seps, "|"))
	for _, row := range res.Rows {
		for _, lower := range res.Lowers {
			cells := []string{mdCell(row.Label), lower}
			for _, c := range fuse {
				st := res.cell(lower, row.Name, c.Name)
				if st.n == 0 {
					cells = append(cells, "–", "–")
					continue
				}
				cells = append(cells, fmt.Sprintf("%.0f", st.cpu*1000), fmt.Sprintf("%.1f", float64(st.peakRSSKiB)/1024))
			}
			w("| %s |\n", strings.Join(cells, " | "))
		}
	}
}

// chartInput is what bench/chart draws: per lower, per row, per series, the
// ratio to native (negative: missing).
type chartInput struct {
	Title    string       `json:"title"`
	Subtitle string       `json:"subtitle"`
	Series   []string     `json:"series"`
	Panels   []chartPanel `json:"panels"`
}

type chartPanel struct {
	Title  string      `json:"title"`
	Rows   []string    `json:"rows"`
	Values [][]float64 `json:"values"` // [series][row]
}

func (res *Results) chart(root, out string) error {
	if !res.hasNative() {
		return fmt.Errorf("no native configuration to take ratios to")
	}
	in := chartInput{
		Title:    "sievefs benchmarks: speed as a ratio of native (1.0 = native; higher is better)",
		Subtitle: fmt.Sprintf("median of %d, %s mode; %d CPUs, %s; %s; sievefs %s", res.Meta.Reps, res.Meta.Mode, res.Meta.NProc, res.Meta.MemTotal, res.Meta.Kernel, res.Meta.Sievefs),
	}
	var series []Config
	for _, c := range res.Configs {
		if c.Kind != Native && c.NA == "" {
			series = append(series, c)
			in.Series = append(in.Series, c.Label)
		}
	}
	for _, lower := range res.Lowers {
		p := chartPanel{Title: lower + " lower"}
		for _, row := range res.Rows {
			p.Rows = append(p.Rows, row.Label)
		}
		for _, c := range series {
			var vals []float64
			for _, row := range res.Rows {
				r := ratio(res.cell(lower, row.Name, c.Name).median, res.cell(lower, row.Name, "native").median)
				if math.IsNaN(r) {
					r = -1
				}
				vals = append(vals, r)
			}
			p.Values = append(p.Values, vals)
		}
		in.Panels = append(in.Panels, p)
	}
	tmp, err := os.CreateTemp("", "sievefs-bench-chart-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := json.NewEncoder(tmp).Encode(in); err != nil {
		tmp.Close()
		return err
	}
	tmp.Close()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cmd := exec.Command("go", "run", ".", "-in", tmp.Name(), "-out", out)
	cmd.Dir = filepath.Join(root, "bench", "chart")
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go run ./bench/chart: %v: %s", err, o)
	}
	return nil
}
