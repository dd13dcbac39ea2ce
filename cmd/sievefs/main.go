// Command sievefs mounts a view of a directory through FUSE, with file data
// going through the kernel's FUSE passthrough.
//
//	sievefs mount [flags] LOWER MOUNTPOINT
//	sievefs check [--lower DIR] FILE...
//	sievefs status [--json] [MOUNTPOINT]
//	sievefs umount [--lazy] [--timeout D] MOUNTPOINT
//	sievefs install-helper [--prefix DIR] [--mandir DIR]
//	sievefs version
//	sievefs help [COMMAND]
//
// Run as mount.fuse.sievefs (the helper that mount(8) runs for
// "mount -t fuse.sievefs" and fstab), it mounts in the background and
// returns once the mount is up.
//
// Each command prints its help for --help. See sievefs(8) or docs/usage.md
// for the flags, the -o options and the exit codes.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/control"
)

// Exit codes; docs/usage.md lists them.
const (
	exitOK             = 0
	exitFailure        = 1
	exitUsage          = 2
	exitBadLower       = 3
	exitBadMountpoint  = 4
	exitMountpointBusy = 5
	exitStackingLoop   = 6
	exitNoFuse         = 7
	exitNoPassthrough  = 8
	exitDeadMount      = 9
)

func main() {
	if filepath.Base(os.Args[0]) == helperName {
		os.Exit(runHelper(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "--help":
		usage(stdout)
		return exitOK
	case "help":
		return runHelp(rest, stdout, stderr)
	case "--version", "-version":
		name = "version"
	}
	c := lookupCommand(name)
	if c == nil {
		fmt.Fprintf(stderr, "sievefs: unknown command %q\n", name)
		fmt.Fprintln(stderr, "Run 'sievefs help' for usage.")
		return exitUsage
	}
	return c.run(rest, stdout, stderr)
}

// mountUsage is the usage line of sievefs mount, with its exit codes.
const mountUsage = `sievefs mount [flags] LOWER MOUNTPOINT

Exit codes: 0 unmounted cleanly; 1 other failure; 2 usage: a bad flag,
option or value, or a bad --policy file (its errors printed as
FILE:LINE:COL: message); 3 bad lower directory; 4 bad mountpoint; 5 the
mountpoint is already a mount; 6 lower and mountpoint overlap; 7 no FUSE;
8 --passthrough require and passthrough unavailable; 9 the mountpoint is a
dead FUSE mount.

The -o words (mount(8)'s, fstab's and libfuse's) are listed in sievefs(8)
and docs/usage.md.`

// mountConfig is what the mount flags and -o options set.
type mountConfig struct {
	opts      sievefs.Options
	logFormat string
	logFile   string
	debug     bool
	recover   bool
	metrics   string
	// metricsMode is the mode of a unix metrics socket, if
	// metricsModeSet (default metricsSocketMode).
	metricsMode    os.FileMode
	metricsModeSet bool
	// policy is the --policy file; passthroughSet says --passthrough was
	// given, which overrides the policy's passthrough.
	policy         string
	passthroughSet bool
	// present is what the uid=, gid= and umask= words present.
	present presentation
	// optErr is the first -o word refused, reported on its own rather
	// than with the whole -o list (mount(8) adds words the user never
	// typed, such as rw).
	optErr error
}

// newMountFlags declares the mount flags on a FlagSet bound to cfg.
func newMountFlags(cfg *mountConfig, stderr io.Writer) *flag.FlagSet {
	f := flag.NewFlagSet("sievefs mount", flag.ContinueOnError)
	f.SetOutput(stderr)
	f.Func("passthrough", "auto|off|require: use the kernel's FUSE passthrough for file data (default auto)", func(s string) error {
		m, err := sievefs.ParsePassthroughMode(s)
		cfg.opts.Passthrough = m
		cfg.passthroughSet = true
		return err
	})
	f.StringVar(&cfg.policy, "policy", "", "policy file: the filter rules of the view (YAML, see examples/ and 'sievefs check'); reloaded on SIGHUP")
	f.Func("cache", "auto|watch|always|never: how long the kernel may cache entries, attributes and data (default auto)", func(s string) error {
		m, err := sievefs.ParseCacheMode(s)
		cfg.opts.Cache = m
		return err
	})
	f.IntVar(&cfg.opts.MaxBacking, "max-backing", 0, "most backing files held for passthrough (default: half the descriptor budget)")
	f.IntVar(&cfg.opts.MaxFDs, "max-fds", 0, "the daemon's descriptor budget, shared by the inode table, open directories and callers' opens (default: RLIMIT_NOFILE)")
	f.IntVar(&cfg.opts.MaxStackDepth, "max-stack-depth", 1, "FUSE passthrough stacking depth, 1 or 2 (2 for a stacked lower such as overlayfs)")
	f.BoolVar(&cfg.debug, "debug", false, "log sievefs events at debug level")
	f.BoolVar(&cfg.opts.FuseDebug, "fuse-debug", false, "log the FUSE wire protocol")
	f.StringVar(&cfg.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&cfg.logFile, "log-file", "", "append the log to this file instead of stderr")
	f.StringVar(&cfg.metrics, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics: HOST:PORT, or unix:/ABS/PATH for a unix socket only the daemon's user may use; off by default")
	f.Func("metrics-mode", "permissions of a unix: metrics socket, in octal (default 0600)", func(s string) error {
		m, err := strconv.ParseUint(s, 8, 32)
		if err != nil || m > 0o777 {
			return fmt.Errorf("want an octal mode such as 0660, at most 0777")
		}
		cfg.metricsMode, cfg.metricsModeSet = os.FileMode(m), true
		return nil
	})
	f.Func("transport", "go-fuse|dev|uring: what serves the FUSE connection (experimental; default go-fuse)", func(s string) error {
		t, err := sievefs.ParseTransport(s)
		cfg.opts.Transport = t
		return err
	})
	f.BoolVar(&cfg.recover, "recover", false, "if the mountpoint is a dead FUSE mount (its daemon died), detach it and mount afresh")
	f.Func("o", "comma-separated mount options: ro, noexec, nodev, noatime, allow_other, fsname=, uid=… (see sievefs(8)), and any flag as name[=value]", func(s string) error {
		if err := applyMountOptions(f, cfg, s); err != nil && cfg.optErr == nil {
			cfg.optErr = err
		}
		return nil
	})
	return f
}

// parseCommand parses a command's flags and arguments. When done is true
// the command is over and exits with code: -h or --help printed the
// command's help on stdout, or a bad flag was reported on stderr in one
// line and a hint. Afterwards f.Usage prints the hint, for the command's
// own usage errors.
func parseCommand(f *flag.FlagSet, usage string, args []string, stdout, stderr io.Writer) (pos []string, code int, done bool) {
	f.SetOutput(io.Discard)
	f.Usage = func() {}
	pos, err := parseInterspersed(f, args)
	f.Usage = func() { usageHint(stderr, f.Name()) }
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, f, usage)
		return nil, exitOK, true
	case err != nil:
		fmt.Fprintf(stderr, "%s: %s\n", f.Name(), flagError(err))
		f.Usage()
		return nil, exitUsage, true
	}
	return pos, 0, false
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments, as mount(8) helpers pass them.
func parseInterspersed(f *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			return nil, err
		}
		args = f.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// daemonProcs runs the daemon's Go code on half the CPUs (at least one)
// unless GOMAXPROCS says otherwise. Each request is a round trip in which
// the client waits; with a processor per CPU the Go scheduler wakes idle
// processors to look for work on every request, and on two CPUs a cold
// stat took about 25% longer (see docs/benchmarks.md).
func daemonProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.NumCPU()/2))
	}
}

func runMount(args []string, stdout, stderr io.Writer) int {
	// A write to a pipe whose reader is gone fails with EPIPE instead of
	// killing the daemon (Go's default for stdout and stderr) and leaving a
	// dead mount. Notify rather than Ignore: an ignored SIGPIPE would be
	// inherited by the programs the daemon runs (fusermount3).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	// A mount helper waiting for this daemon gets its output until the
	// mount is up (see helper.go). All output, the log and messages, goes
	// through log sinks, which never block (see logsink.go); they are
	// written out at exit, each within one deadline.
	ready := readinessFromEnv()
	errSink := newLogSink(ready.tee(stderr))
	sinks := []*logSink{errSink}
	var logFile *os.File
	defer func() {
		deadline := time.Now().Add(logFlushTimeout)
		for _, s := range sinks {
			s.Close(deadline)
		}
		if logFile != nil {
			logFile.Close()
		}
	}()
	stderr = errSink
	var cfg mountConfig
	f := newMountFlags(&cfg, stderr)
	pos, code, done := parseCommand(f, mountUsage, args, stdout, stderr)
	if done {
		return code
	}
	if cfg.optErr != nil {
		fmt.Fprintf(stderr, "sievefs mount: %v\n", cfg.optErr)
		f.Usage()
		return exitUsage
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "sievefs mount: want LOWER and MOUNTPOINT, got %d arguments\n", len(pos))
		f.Usage()
		return exitUsage
	}
	if cfg.metricsModeSet && !strings.HasPrefix(cfg.metrics, "unix:") {
		fmt.Fprintln(stderr, "sievefs mount: --metrics-mode applies to a unix: --metrics-addr only")
		return exitUsage
	}
	var logOut io.Writer = errSink
	if cfg.logFile != "" {
		lf, err := os.OpenFile(cfg.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			fmt.Fprintf(stderr, "sievefs mount: log file: %v\n", err)
			return exitFailure
		}
		logFile = lf
		fileSink := newLogSink(ready.tee(lf))
		sinks = append(sinks, fileSink)
		logOut = fileSink
	}
	logger, err := newLogger(logOut, cfg.logFormat, cfg.debug)
	if err != nil {
		fmt.Fprintf(stderr, "sievefs mount: %v\n", err)
		return exitUsage
	}
	for _, s := range sinks {
		s.setNotice(dropNotice(cfg.logFormat))
	}
	// What go-fuse and net/http log through the log package (to stderr,
	// by default) goes to the sink too.
	slog.SetDefault(logger)
	cfg.opts.Logger = logger
	cfg.opts.Debug = cfg.debug
	daemonProcs()
	// A bad policy is a usage error, before anything is mounted.
	pol, code, ok := loadPolicy(&cfg, pos[0], ready.pipe != nil, stderr)
	if !ok {
		return code
	}
	defer pol.close()
	if extra := cfg.present.rules(); extra != nil {
		cfg.opts.Rules = append(cfg.opts.Rules, extra...)
		if pol != nil {
			pol.extra = extra
		}
	}

	if cfg.recover {
		if err := detachDead(pos[1], logger); err != nil {
			fmt.Fprintf(stderr, "sievefs mount: %v\n", err)
			return exitFailure
		}
	}
	// The metrics address is taken before mounting, so that a bad one
	// leaves nothing mounted.
	var metricsLn net.Listener
	if cfg.metrics != "" {
		mode := os.FileMode(metricsSocketMode)
		if cfg.metricsModeSet {
			mode = cfg.metricsMode
		}
		if metricsLn, err = listenMetrics(cfg.metrics, mode); err != nil {
			fmt.Fprintf(stderr, "sievefs mount: metrics address: %v\n", err)
			return exitUsage
		}
		defer metricsLn.Close()
	}
	// Signals wait until the mount is up (and readiness told) to unmount it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// SIGHUP reloads the policy; its own channel, so that a pending reload
	// never crowds out a SIGTERM.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	m, err := sievefs.MountView(pos[0], pos[1], cfg.opts)
	if err != nil {
		fmt.Fprintf(stderr, "sievefs mount: %v\n", err)
		if errors.Is(err, sievefs.ErrDeadMount) {
			fmt.Fprintln(stderr, "sievefs mount: use --recover to detach the dead mount and mount afresh")
		}
		return exitCode(err)
	}
	ctl, err := control.Listen(control.SocketPath(m.Mountpoint, os.Geteuid()), func() control.Status {
		st := control.Status{Status: m.Status(), PID: os.Getpid()}
		st.Policy, st.PolicyError = pol.status()
		return st
	})
	if err != nil {
		logger.Warn("no control socket: sievefs status and umount will not reach this daemon", "err", err)
	} else {
		defer ctl.Close()
	}
	if metricsLn != nil {
		srv := serveMetrics(metricsLn, m, logger, func() uint64 {
			var n uint64
			for _, s := range sinks {
				n += s.Dropped()
			}
			return n
		})
		defer srv.Close()
		logger.Info("serving metrics", "addr", metricsLn.Addr().String())
	}
	ready.ready()
	if err := sdNotify("READY=1\nSTATUS=serving " + m.Lower + " on " + m.Mountpoint); err != nil {
		logger.Warn("sd_notify", "err", err)
	}
	for {
		select {
		case <-hups:
			if pol == nil {
				logger.Warn("SIGHUP: no policy to reload (mounted without --policy)")
			} else {
				pol.reload(m, logger)
			}
			continue
		case sig := <-sigs:
			logger.Info("unmounting", "signal", sig.String())
			sdNotify("STOPPING=1")
			if ctl != nil {
				ctl.Close()
			}
			if err := m.Unmount(); err != nil {
				fmt.Fprintf(stderr, "sievefs mount: unmount %s: %v\n", m.Mountpoint, err)
				return exitFailure
			}
		case <-m.Done():
			logger.Info("unmounted from outside", "mountpoint", m.Mountpoint)
			sdNotify("STOPPING=1")
		}
		return exitOK
	}
}

// detachDead detaches mountpoint if it is a FUSE mount whose daemon died
// (it answers ENOTCONN), so that a new view can be mounted there.
func detachDead(mountpoint string, logger *slog.Logger) error {
	for i := 0; i < 8 && control.Dead(mountpoint); i++ {
		if err := unix.Unmount(mountpoint, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detach the dead mount on %s: %w", mountpoint, err)
		}
		logger.Warn("detached a dead FUSE mount", "mountpoint", mountpoint)
	}
	return nil
}

// exitCode maps a mount error to the documented exit code.
func exitCode(err error) int {
	for _, c := range []struct {
		err  error
		code int
	}{
		{sievefs.ErrLower, exitBadLower},
		{sievefs.ErrMountpoint, exitBadMountpoint},
		{sievefs.ErrMountpointBusy, exitMountpointBusy},
		{sievefs.ErrDeadMount, exitDeadMount},
		{sievefs.ErrStackingLoop, exitStackingLoop},
		{sievefs.ErrNoFuse, exitNoFuse},
		{sievefs.ErrPassthroughUnavailable, exitNoPassthrough},
		{sievefs.ErrMountOption, exitUsage},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return exitFailure
}

func newLogger(w io.Writer, format string, debug bool) (*slog.Logger, error) {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	ho := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", strconv.Quote(format))
}

// dropNotice returns the function that makes the line reporting lost log
// lines, in the log format.
func dropNotice(format string) func(lost uint64) []byte {
	return func(lost uint64) []byte {
		var b bytes.Buffer
		if l, err := newLogger(&b, format, false); err == nil {
			l.Warn("log lines dropped: the log output was full or failing", "lines", lost)
		}
		return b.Bytes()
	}
}
