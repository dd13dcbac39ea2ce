// Command sievefs mounts a view of a directory through FUSE, with file data
// going through the kernel's FUSE passthrough.
//
//	sievefs mount [flags] LOWER MOUNTPOINT
//	sievefs check [--lower DIR] FILE...
//	sievefs status [--json] [MOUNTPOINT]
//	sievefs umount [--lazy] [--timeout D] MOUNTPOINT
//	sievefs install-helper [--prefix DIR]
//	sievefs --version
//
// Run as mount.fuse.sievefs (the helper that mount(8) runs for
// "mount -t fuse.sievefs" and fstab), it mounts in the background and
// returns once the mount is up.
//
// See docs/usage.md for the flags, the -o options and the exit codes.
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
	"runtime/debug"
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

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the module version is used.
var version = ""

func main() {
	if filepath.Base(os.Args[0]) == helperName {
		os.Exit(runHelper(os.Args[1:], os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, "sievefs", versionString())
		return exitOK
	case "-h", "--help", "help":
		usage(stdout)
		return exitOK
	case "mount":
		return runMount(args[1:], stderr)
	case "check":
		return runCheck(args[1:], stdout, stderr)
	case "status":
		return runStatus(args[1:], stdout, stderr)
	case "umount":
		return runUmount(args[1:], stderr)
	case "install-helper":
		return runInstallHelper(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "sievefs: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  sievefs mount [flags] LOWER MOUNTPOINT   mount a view of LOWER on MOUNTPOINT (foreground)
  sievefs check [--lower DIR] FILE...      check policy files and print their rules as understood
  sievefs status [--json] [MOUNTPOINT]     show what the sievefs mounts are doing
  sievefs umount [--lazy] MOUNTPOINT       unmount and wait for the daemon to exit
  sievefs install-helper [--prefix DIR]    install mount.fuse.sievefs for mount(8) and fstab
  sievefs --version                        print the version

Run 'sievefs COMMAND -h' for the flags of a command.
`)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// mountUsage is the usage line of sievefs mount, with its exit codes.
const mountUsage = `sievefs mount [flags] LOWER MOUNTPOINT

Exit codes: 0 unmounted cleanly; 1 other failure; 2 usage: a bad flag,
option or value, or a bad --policy file (its errors printed as
FILE:LINE:COL: message); 3 bad lower directory; 4 bad mountpoint; 5 the
mountpoint is already a mount; 6 lower and mountpoint overlap; 7 no FUSE;
8 --passthrough require and passthrough unavailable; 9 the mountpoint is a
dead FUSE mount.

Flags:`

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
	f.Func("transport", "go-fuse|dev: what serves the FUSE connection (experimental; default go-fuse)", func(s string) error {
		t, err := sievefs.ParseTransport(s)
		cfg.opts.Transport = t
		return err
	})
	f.BoolVar(&cfg.recover, "recover", false, "if the mountpoint is a dead FUSE mount (its daemon died), detach it and mount afresh")
	f.Func("o", "comma-separated mount options: ro, noexec, nodev, noatime, allow_other… (see docs/usage.md), and any flag as name[=value]", func(s string) error {
		return applyMountOptions(f, cfg, s)
	})
	return f
}

// applyMountOptions applies -o options: the mount(8), fstab and FUSE words
// of mountWords, the words of ignoredWords and refusedWords, and any mount
// flag written as name[=value] (with _ or -). A word that restricts the
// mount is applied or refused, never dropped.
func applyMountOptions(f *flag.FlagSet, cfg *mountConfig, list string) error {
	for _, o := range strings.Split(list, ",") {
		name, value, hasValue := strings.Cut(strings.TrimSpace(o), "=")
		if name == "" {
			continue
		}
		if reason, ok := refusedWords[name]; ok {
			return fmt.Errorf("mount option %q refused: %s", name, reason)
		}
		if name == "user" && hasValue {
			continue // user=NAME: mount(8) records who mounted the view
		}
		if apply, ok := mountWords[name]; ok {
			if hasValue {
				return fmt.Errorf("mount option %q takes no value", name)
			}
			apply(&cfg.opts)
			continue
		}
		if ignoredWords[name] || strings.HasPrefix(name, "x-") || strings.HasPrefix(name, "X-") {
			continue
		}
		flagName := strings.ReplaceAll(name, "_", "-")
		fl := f.Lookup(flagName)
		if fl == nil || flagName == "o" {
			return fmt.Errorf("unknown mount option %q", name)
		}
		if !hasValue {
			if bf, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
				value = "true"
			} else {
				return fmt.Errorf("mount option %q needs a value", name)
			}
		}
		if err := f.Set(flagName, value); err != nil {
			return fmt.Errorf("mount option %s: %w", name, err)
		}
	}
	return nil
}

// mountWords are the -o words that set mount options, each as mount(8)
// means it; a later word overrides an earlier one. suid and dev need a
// daemon running as root: MountView refuses them otherwise.
var mountWords = map[string]func(o *sievefs.Options){
	"ro":                  func(o *sievefs.Options) { o.ReadOnly = true },
	"rw":                  func(o *sievefs.Options) { o.ReadOnly = false },
	"noexec":              func(o *sievefs.Options) { o.NoExec = true },
	"exec":                func(o *sievefs.Options) { o.NoExec = false },
	"nosuid":              func(o *sievefs.Options) { o.Suid = false },
	"suid":                func(o *sievefs.Options) { o.Suid = true },
	"nodev":               func(o *sievefs.Options) { o.Dev = false },
	"dev":                 func(o *sievefs.Options) { o.Dev = true },
	"noatime":             func(o *sievefs.Options) { o.Atime = sievefs.AtimeNever },
	"relatime":            func(o *sievefs.Options) { o.Atime = sievefs.AtimeRelative },
	"strictatime":         func(o *sievefs.Options) { o.Atime = sievefs.AtimeStrict },
	"atime":               func(o *sievefs.Options) { o.Atime = sievefs.AtimeDefault },
	"nostrictatime":       func(o *sievefs.Options) { o.Atime = sievefs.AtimeDefault },
	"nodiratime":          func(o *sievefs.Options) { o.NoDirAtime = true },
	"diratime":            func(o *sievefs.Options) { o.NoDirAtime = false },
	"nosymfollow":         func(o *sievefs.Options) { o.NoSymFollow = true },
	"symfollow":           func(o *sievefs.Options) { o.NoSymFollow = false },
	"allow_other":         func(o *sievefs.Options) { o.AllowOther = true },
	"default_permissions": func(o *sievefs.Options) { o.DefaultPermissions = true },
	// fstab's user and users let ordinary users mount; as mount(8) says,
	// they imply noexec,nosuid,nodev unless later words say otherwise
	// (for an fstab "user,exec", mount(8) passes exec after user). owner
	// and group imply nosuid,nodev.
	"user":  secureWords,
	"users": secureWords,
	"owner": func(o *sievefs.Options) { o.Suid, o.Dev = false, false },
	"group": func(o *sievefs.Options) { o.Suid, o.Dev = false, false },
}

// secureWords is what fstab's user and users imply: noexec,nosuid,nodev.
func secureWords(o *sievefs.Options) { o.NoExec, o.Suid, o.Dev = true, false, false }

// ignoredWords are -o words that concern mount(8), systemd or the mount
// table rather than the mount, or that ask for what is the default anyway;
// they are accepted and change nothing. user=NAME is how mount(8) records
// who mounted (see applyMountOptions); defaults means sievefs's defaults
// (rw,exec,nosuid,nodev).
var ignoredWords = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "nofail": true, "_netdev": true,
	"nouser": true, "nousers": true, "noowner": true, "nogroup": true, "comment": true,
	"async": true, "nolazytime": true, "nomand": true,
}

// refusedWords are -o words sievefs refuses rather than accept without
// doing what they ask, with the reason.
var refusedWords = map[string]string{
	"sync":       "the view would not make directory changes synchronous; mount the lower filesystem sync, which makes every change through the view synchronous",
	"dirsync":    "the view would not make directory changes synchronous; mount the lower filesystem dirsync, which does",
	"mand":       "Linux no longer supports mandatory locks",
	"lazytime":   "the kernel keeps no timestamps of its own for FUSE files, so none would be written lazily; mount the lower filesystem lazytime",
	"norelatime": "it would not turn relatime off, the kernel's default; use strictatime",
	"remount":    "the options of a mounted view cannot change; unmount it and mount it again",
	"allow_root": "sievefs has no allow_root; use allow_other",
}

// hiddenFlags are experimental flags that -h does not list; docs/usage.md
// describes them.
var hiddenFlags = map[string]bool{"transport": true}

// parseCommand parses a command's flags and arguments. When done is true
// the command is over and exits with code: help was printed, or a usage
// error was reported.
func parseCommand(f *flag.FlagSet, usage string, args []string, stderr io.Writer) (pos []string, code int, done bool) {
	f.Usage = func() {
		fmt.Fprintln(stderr, "usage: "+usage)
		shown := flag.NewFlagSet(f.Name(), flag.ContinueOnError)
		shown.SetOutput(stderr)
		f.VisitAll(func(fl *flag.Flag) {
			if !hiddenFlags[fl.Name] {
				shown.Var(fl.Value, fl.Name, fl.Usage)
			}
		})
		shown.PrintDefaults()
	}
	pos, err := parseInterspersed(f, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil, exitOK, true
	case err != nil:
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

func runMount(args []string, stderr io.Writer) int {
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
	pos, code, done := parseCommand(f, mountUsage, args, stderr)
	if done {
		return code
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
