// Command sievefs mounts a view of a directory through FUSE, with file data
// going through the kernel's FUSE passthrough.
//
//	sievefs mount [flags] LOWER MOUNTPOINT
//	sievefs --version
//
// See the README for the flags, the -o options and the exit codes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/sievefs/sievefs"
)

// Exit codes; the README lists them.
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
	}
	fmt.Fprintf(stderr, "sievefs: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  sievefs mount [flags] LOWER MOUNTPOINT   mount a view of LOWER on MOUNTPOINT (foreground)
  sievefs --version                        print the version

Run 'sievefs mount -h' for the mount flags.
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

// mountConfig is what the mount flags and -o options set.
type mountConfig struct {
	opts      sievefs.Options
	logFormat string
	debug     bool
}

// newMountFlags declares the mount flags on a FlagSet bound to cfg.
func newMountFlags(cfg *mountConfig, stderr io.Writer) *flag.FlagSet {
	f := flag.NewFlagSet("sievefs mount", flag.ContinueOnError)
	f.SetOutput(stderr)
	f.Func("passthrough", "auto|off|require: use the kernel's FUSE passthrough for file data (default auto)", func(s string) error {
		m, err := sievefs.ParsePassthroughMode(s)
		cfg.opts.Passthrough = m
		return err
	})
	f.Func("cache", "auto|always|never: how long the kernel may cache entries, attributes and data (default auto)", func(s string) error {
		m, err := sievefs.ParseCacheMode(s)
		cfg.opts.Cache = m
		return err
	})
	f.IntVar(&cfg.opts.MaxBacking, "max-backing", 0, "most backing files held for passthrough (default: half the descriptor budget)")
	f.IntVar(&cfg.opts.MaxStackDepth, "max-stack-depth", 1, "FUSE passthrough stacking depth, 1 or 2 (2 for a stacked lower such as overlayfs)")
	f.BoolVar(&cfg.debug, "debug", false, "log sievefs events at debug level")
	f.BoolVar(&cfg.opts.FuseDebug, "fuse-debug", false, "log the FUSE wire protocol")
	f.StringVar(&cfg.logFormat, "log-format", "text", "log format: text or json")
	f.Func("o", "comma-separated mount options: ro, allow_other, default_permissions, and any flag as name[=value]", func(s string) error {
		return applyMountOptions(f, cfg, s)
	})
	return f
}

// applyMountOptions applies -o options: the FUSE and mount(8) words, and any
// mount flag written as name[=value] (with _ or -).
func applyMountOptions(f *flag.FlagSet, cfg *mountConfig, list string) error {
	for _, o := range strings.Split(list, ",") {
		name, value, hasValue := strings.Cut(strings.TrimSpace(o), "=")
		switch name {
		case "":
		case "ro":
			cfg.opts.ReadOnly = true
		case "rw":
			cfg.opts.ReadOnly = false
		case "allow_other":
			cfg.opts.AllowOther = true
		case "default_permissions":
			cfg.opts.DefaultPermissions = true
		case "defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users",
			"dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime", "relatime":
			// mount(8) and fstab words that concern the caller, not sievefs.
		default:
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
	}
	return nil
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

func runMount(args []string, stderr io.Writer) int {
	var cfg mountConfig
	f := newMountFlags(&cfg, stderr)
	f.Usage = func() {
		fmt.Fprintln(stderr, "usage: sievefs mount [flags] LOWER MOUNTPOINT")
		f.PrintDefaults()
	}
	pos, err := parseInterspersed(f, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "sievefs mount: want LOWER and MOUNTPOINT, got %d arguments\n", len(pos))
		f.Usage()
		return exitUsage
	}
	logger, err := newLogger(stderr, cfg.logFormat, cfg.debug)
	if err != nil {
		fmt.Fprintf(stderr, "sievefs mount: %v\n", err)
		return exitUsage
	}
	cfg.opts.Logger = logger
	cfg.opts.Debug = cfg.debug

	m, err := sievefs.MountView(pos[0], pos[1], cfg.opts)
	if err != nil {
		fmt.Fprintf(stderr, "sievefs mount: %v\n", err)
		return exitCode(err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case sig := <-sigs:
		logger.Info("unmounting", "signal", sig.String())
		if err := m.Unmount(); err != nil {
			fmt.Fprintf(stderr, "sievefs mount: unmount %s: %v\n", m.Mountpoint, err)
			return exitFailure
		}
	case <-m.Done():
		logger.Info("unmounted from outside", "mountpoint", m.Mountpoint)
	}
	return exitOK
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
