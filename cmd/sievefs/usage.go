package main

// The commands, their help and usage errors, and the version.

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
)

// command is a subcommand: sievefs NAME ARGS.
type command struct {
	name, args, summary string
	run                 func(args []string, stdout, stderr io.Writer) int
}

// commands are the subcommands, in the order the usage lists them. Each
// prints its own help for -h and --help (see parseCommand); help is not
// among them, since it looks them up.
var commands = []command{
	{"mount", "[flags] LOWER MOUNTPOINT", "mount a view of LOWER on MOUNTPOINT (foreground)", runMount},
	{"check", "[--lower DIR] FILE...", "check policy files and print their rules as understood", runCheck},
	{"status", "[--json] [MOUNTPOINT]", "show what the sievefs mounts are doing", runStatus},
	{"umount", "[--lazy] [--timeout D] MOUNTPOINT", "unmount and wait for the daemon to exit", runUmount},
	{"install-helper", "[--prefix DIR] [--mandir DIR]", "install mount.fuse.sievefs and the manual page", runInstallHelper},
	{"version", "", "print the version, the commit and the go-fuse version (also --version)", runVersion},
}

// lookupCommand returns the command called name, or nil.
func lookupCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// usage prints the commands.
func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sievefs COMMAND [ARGS]")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace("sievefs "+c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(tw, "  sievefs help [COMMAND]\tshow this, or the usage and flags of a command\n")
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'sievefs help COMMAND' or 'sievefs COMMAND --help' for the flags of a command;")
	fmt.Fprintln(w, "the manual page sievefs(8) has all of it.")
}

// runHelp prints the usage of sievefs, or the help of one command.
func runHelp(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		usage(stdout)
		return exitOK
	case len(args) > 1:
		fmt.Fprintf(stderr, "sievefs help: want one COMMAND, got %d\n", len(args))
		usageHint(stderr, "sievefs help")
		return exitUsage
	}
	c := lookupCommand(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "sievefs help: unknown command %q\n", args[0])
		fmt.Fprintln(stderr, "Run 'sievefs help' for the commands.")
		return exitUsage
	}
	return c.run([]string{"--help"}, stdout, stderr)
}

// usageHint tells where the help of command (such as "sievefs mount") is,
// after a usage error.
func usageHint(w io.Writer, command string) {
	fmt.Fprintf(w, "Run '%s --help' for usage.\n", command)
}

// printHelp prints a command's usage text and its flags.
func printHelp(w io.Writer, f *flag.FlagSet, usage string) {
	fmt.Fprintln(w, "usage: "+usage)
	shown := flag.NewFlagSet(f.Name(), flag.ContinueOnError)
	f.VisitAll(func(fl *flag.Flag) {
		if !hiddenFlags[fl.Name] {
			shown.Var(fl.Value, fl.Name, fl.Usage)
			shown.Lookup(fl.Name).DefValue = fl.DefValue
		}
	})
	hasFlags := false
	shown.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		shown.SetOutput(w)
		shown.PrintDefaults()
	}
}

// hiddenFlags are experimental flags that the help does not list;
// docs/usage.md describes them.
var hiddenFlags = map[string]bool{"transport": true}

// flagError says what was wrong in the flags, from the flag package's
// error, naming flags as the help does: --name (the flag package says
// -name, and takes either).
func flagError(err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return "unknown flag " + dashes(name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return "flag " + dashes(name) + " needs a value"
	}
	// invalid value "x" for flag -cache: …, invalid boolean value "x" for -debug: …
	if m := badValue.FindStringSubmatchIndex(msg); m != nil {
		return msg[:m[2]] + dashes(msg[m[4]:m[5]]) + msg[m[5]:]
	}
	return msg
}

// badValue finds the flag named in the flag package's message about a bad
// value: its submatches are "flag -" (or "-") and the name.
var badValue = regexp.MustCompile(`^invalid (?:boolean )?value ".*?" for (flag -|-)([\w-]+):`)

// dashes writes a flag name as typed on the command line: -o, --name.
func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the main module's version from the build info is used.
var version = ""

// buildInfo is what sievefs version prints: where the binary came from.
type buildInfo struct {
	Version  string // the release, or (devel)
	Commit   string // the VCS revision, or "" if the build did not record it
	Modified bool   // the work tree had changes the commit lacks
	GoFuse   string // the go-fuse module version linked in
	Go       string // the Go release that built it
}

// readBuildInfo reads what the Go toolchain recorded in the binary.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(devel)", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if bi.Main.Version != "" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/hanwen/go-fuse/v2" {
				b.GoFuse = d.Version
				if d.Replace != nil {
					b.GoFuse = d.Replace.Path + " " + d.Replace.Version
				}
			}
		}
	}
	if version != "" {
		b.Version = version
	}
	return b
}

// print writes b as sievefs version shows it: the version on the first
// line, then one "key: value" line each for the commit, go-fuse and Go.
func (b buildInfo) print(w io.Writer) {
	commit := b.Commit
	switch {
	case commit == "":
		commit = "unknown (not recorded at build time)"
	case b.Modified:
		commit += " (modified)"
	}
	goFuse := b.GoFuse
	if goFuse == "" {
		goFuse = "unknown"
	}
	fmt.Fprintf(w, "sievefs %s\ncommit: %s\ngo-fuse: %s\ngo: %s\n", b.Version, commit, goFuse, b.Go)
}

// runVersion prints the version, the commit and the go-fuse version.
func runVersion(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("sievefs version", flag.ContinueOnError)
	pos, code, done := parseCommand(f, "sievefs version\n\nPrints the version of sievefs, the commit it was built from (with\n\"(modified)\" if the work tree had changes), and the versions of go-fuse\nand Go it was built with.", args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 0 {
		fmt.Fprintf(stderr, "sievefs version: takes no arguments, got %d\n", len(pos))
		f.Usage()
		return exitUsage
	}
	readBuildInfo().print(stdout)
	return exitOK
}
