package main

// Tests of the command line as a user meets it, through the built binary:
// the help of every command, short usage errors, the version, and the
// manual page install-helper installs.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sievefs/sievefs/man"
)

// TestHelp checks that every command prints its own usage for help CMD,
// CMD --help and CMD -h, on stdout, with exit 0; and that sievefs help
// lists them all.
func TestHelp(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			r := runBinary(t, "help", c.name)
			if r.code != exitOK || r.stderr != "" || !strings.HasPrefix(r.stdout, "usage: sievefs "+c.name) {
				t.Fatalf("help %s: exit %d; stdout:\n%s\nstderr:\n%s", c.name, r.code, r.stdout, r.stderr)
			}
			for _, flag := range []string{"--help", "-h"} {
				if r2 := runBinary(t, c.name, flag); r2 != r {
					t.Errorf("%s %s: exit %d, stdout:\n%s\nstderr:\n%s\nwant what help %s printed", c.name, flag, r2.code, r2.stdout, r2.stderr, c.name)
				}
			}
		})
	}
	if r := runBinary(t, "help", "mount"); !strings.Contains(r.stdout, "\nFlags:\n") || !strings.Contains(r.stdout, "-policy") || !strings.Contains(r.stdout, "sievefs(8)") {
		t.Errorf("help mount lacks the flags or the manual page:\n%s", r.stdout)
	}
	// The mount helper, as mount.fuse.sievefs --help.
	helper := filepath.Join(t.TempDir(), helperName)
	if err := os.Symlink(binary(t), helper); err != nil {
		t.Fatal(err)
	}
	if r := runAs(t, nil, helper, "--help"); r.code != exitOK || r.stderr != "" || !strings.HasPrefix(r.stdout, "usage: "+helperName) {
		t.Errorf("%s --help: exit %d; stdout:\n%s\nstderr:\n%s", helperName, r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		r := runBinary(t, args...)
		if r.code != exitOK || r.stderr != "" {
			t.Errorf("%q: exit %d; stderr:\n%s", args, r.code, r.stderr)
		}
		for _, c := range append(commands, command{name: "help"}) {
			if !strings.Contains(r.stdout, "\n  sievefs "+c.name) {
				t.Errorf("%q does not list %s:\n%s", args, c.name, r.stdout)
			}
		}
	}
}

// TestUsageErrorsAreShort checks that a usage error prints one line saying
// what is wrong and one line of hint, and nothing on stdout.
func TestUsageErrorsAreShort(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // the first line
		hint string
	}{
		{[]string{"mount", "--foo", "a", "b"}, "sievefs mount: unknown flag --foo", "sievefs mount --help"},
		{[]string{"mount", "-x", "a", "b"}, "sievefs mount: unknown flag -x", "sievefs mount --help"},
		{[]string{"mount", "a", "b", "--cache"}, "sievefs mount: flag --cache needs a value", "sievefs mount --help"},
		{[]string{"mount", "--cache=sometimes", "a", "b"}, `sievefs mount: invalid value "sometimes" for --cache: cache mode "sometimes": want auto, watch, always or never`, "sievefs mount --help"},
		{[]string{"mount", "--debug=maybe", "a", "b"}, `sievefs mount: invalid boolean value "maybe" for --debug: parse error`, "sievefs mount --help"},
		{[]string{"mount", "-o", "rw,nosuid,nodev,bogus", "a", "b"}, `sievefs mount: unknown mount option "bogus"`, "sievefs mount --help"},
		{[]string{"mount", "a"}, "sievefs mount: want LOWER and MOUNTPOINT, got 1 arguments", "sievefs mount --help"},
		{[]string{"check", "--foo"}, "sievefs check: unknown flag --foo", "sievefs check --help"},
		{[]string{"status", "--foo"}, "sievefs status: unknown flag --foo", "sievefs status --help"},
		{[]string{"umount", "--foo", "x"}, "sievefs umount: unknown flag --foo", "sievefs umount --help"},
		{[]string{"umount"}, "sievefs umount: want MOUNTPOINT, got 0 arguments", "sievefs umount --help"},
		{[]string{"install-helper", "--foo"}, "sievefs install-helper: unknown flag --foo", "sievefs install-helper --help"},
		{[]string{"install-helper", "extra"}, "sievefs install-helper: takes no arguments, got 1", "sievefs install-helper --help"},
		{[]string{"version", "--foo"}, "sievefs version: unknown flag --foo", "sievefs version --help"},
		{[]string{"help", "frobnicate"}, `sievefs help: unknown command "frobnicate"`, "sievefs help"},
		{[]string{"frobnicate"}, `sievefs: unknown command "frobnicate"`, "sievefs help"},
	} {
		r := runBinary(t, c.args...)
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if r.code != exitUsage || r.stdout != "" || len(lines) != 2 || lines[0] != c.want || !strings.Contains(lines[1], "'"+c.hint) {
			t.Errorf("%q: exit %d; stdout:\n%s\nstderr:\n%s\nwant exit %d and 2 lines: %q, then a hint naming %q",
				c.args, r.code, r.stdout, r.stderr, exitUsage, c.want, c.hint)
		}
	}
}

// TestVersion builds the binary with the commit recorded when the source
// is a git work tree (as a release build is), and checks what version
// prints: the version, the commit, go-fuse's version and Go's.
func TestVersion(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	sh := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %q: %v", name, args, err)
		}
		return strings.TrimSpace(string(out))
	}
	// The go command records the commit of a git repository, not of a
	// linked work tree (whose .git is a file), and needs git for it.
	_, gitErr := exec.LookPath("git")
	fi, err := os.Stat(filepath.Join(root, ".git"))
	vcs := gitErr == nil && err == nil && fi.IsDir()
	// The go command calls the tree modified when git status lists
	// anything; if another test changes the tree during the build, which
	// it was is not known.
	modified := func() bool { return vcs && sh("git", "status", "--porcelain") != "" }
	before := modified()
	bin := filepath.Join(t.TempDir(), "sievefs")
	sh(gobin, "build", "-buildvcs="+strconv.FormatBool(vcs), "-o", bin, "./cmd/sievefs")
	knownModified := modified() == before

	wantVersion, wantCommit := "(devel)", "unknown (not recorded at build time)"
	if vcs {
		wantCommit = sh("git", "rev-parse", "HEAD")
		wantVersion = wantCommit[:12] // in the pseudo-version
		if before {
			wantCommit += " (modified)"
		}
	}
	goFuse := sh(gobin, "list", "-m", "-f", "{{.Version}}", "github.com/hanwen/go-fuse/v2")
	goVersion := sh(gobin, "env", "GOVERSION")

	var first []byte
	for _, arg := range []string{"version", "--version", "-version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if first == nil {
			first = out
		} else if !bytes.Equal(out, first) {
			t.Errorf("%s printed %q, version %q", arg, out, first)
		}
	}
	lines := strings.Split(strings.TrimSuffix(string(first), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("version printed %d lines, want 4:\n%s", len(lines), first)
	}
	if v, ok := strings.CutPrefix(lines[0], "sievefs "); !ok || !strings.Contains(v, wantVersion) {
		t.Errorf("first line %q, want sievefs and a version with %q", lines[0], wantVersion)
	}
	for i, want := range []string{"commit: " + wantCommit, "go-fuse: " + goFuse, "go: " + goVersion} {
		if i == 0 && !knownModified {
			if strings.TrimSuffix(lines[1], " (modified)") == strings.TrimSuffix(want, " (modified)") {
				continue
			}
		}
		if lines[i+1] != want {
			t.Errorf("line %d: %q, want %q", i+2, lines[i+1], want)
		}
	}
	t.Run("Ldflags", func(t *testing.T) {
		old := version
		version = "v1.2.3-test"
		defer func() { version = old }()
		var out, errOut bytes.Buffer
		if code := run([]string{"--version"}, &out, &errOut); code != exitOK {
			t.Errorf("exit code %d; stderr %q", code, errOut.String())
		}
		if got, _, _ := strings.Cut(out.String(), "\n"); got != "sievefs v1.2.3-test" {
			t.Errorf("printed %q", out.String())
		}
	})
}

// TestInstallHelperManPage installs the helper and the manual page into a
// scratch root, as install-helper does, and reads the page with man(1)
// under both its names when man is installed.
func TestInstallHelperManPage(t *testing.T) {
	root := t.TempDir()
	sbin, mandir := filepath.Join(root, "sbin"), filepath.Join(root, "share", "man")
	if err := os.Mkdir(sbin, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // a second install replaces the first
		r := runBinary(t, "install-helper", "--prefix", sbin, "--mandir", mandir)
		if r.code != exitOK {
			t.Fatalf("install-helper: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		for _, p := range []string{filepath.Join(sbin, helperName), filepath.Join(mandir, "man8", "sievefs.8"), filepath.Join(mandir, "man8", helperName+".8")} {
			if !strings.Contains(r.stdout, "installed "+p+"\n") {
				t.Errorf("install-helper does not say it installed %s:\n%s", p, r.stdout)
			}
		}
	}
	page, err := os.ReadFile(filepath.Join(mandir, "man8", "sievefs.8"))
	if err != nil || !bytes.Equal(page, man.Page) {
		t.Fatalf("installed page: %v; equal to man/sievefs.8: %v", err, bytes.Equal(page, man.Page))
	}
	repo, err := os.ReadFile("../../man/sievefs.8")
	if err != nil || !bytes.Equal(repo, man.Page) {
		t.Fatalf("the binary's page is not man/sievefs.8 (%v)", err)
	}
	if fi, err := os.Stat(filepath.Join(mandir, "man8", "sievefs.8")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("page mode: %v %v", fi, err)
	}
	entries, _ := os.ReadDir(filepath.Join(mandir, "man8"))
	if len(entries) != 2 {
		t.Errorf("man8 holds %d files, want 2 (no temporary files left)", len(entries))
	}
	if mansh, err := exec.LookPath("man"); err == nil {
		for _, name := range []string{"sievefs", helperName} {
			cmd := exec.Command(mansh, "-M", mandir, "8", name)
			cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat", "LANG=C.UTF-8")
			out, err := cmd.CombinedOutput()
			text := strings.Join(strings.Fields(string(out)), " ")
			if err != nil || !strings.Contains(text, "NAME sievefs, mount.fuse.sievefs - mount a filtered view of a directory through FUSE") || !strings.Contains(text, "kernel_cache") {
				t.Errorf("man 8 %s: %v\n%.600s", name, err, out)
			}
		}
	} else {
		t.Log("man not installed: the page is not read")
	}

	other := t.TempDir()
	if r := runBinary(t, "install-helper", "--prefix", other, "--mandir", ""); r.code != exitOK || strings.Contains(r.stdout, ".8") {
		t.Errorf("--mandir '': exit %d; stdout:\n%s", r.code, r.stdout)
	}
}
