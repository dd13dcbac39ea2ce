package main

// The mount(8) helper: mount.fuse.sievefs, a link to this binary, which
// mount(8) runs for `mount -t fuse.sievefs` and fstab lines. It starts
// `sievefs mount` in the background and returns once the mount is up.

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/sievefs/sievefs/man"
)

// helperName is the name under which mount(8) runs sievefs.
const helperName = "mount.fuse.sievefs"

// readyEnv names the descriptor on which a daemon started by the helper
// reports: its output until the mount is up, then one NUL byte.
const readyEnv = "SIEVEFS_READY_FD"

// runHelper mounts as mount(8) asks of a helper:
//
//	mount.fuse.sievefs LOWER MOUNTPOINT [-o OPTIONS] [-n] [-s] [-v] [-f] [-t TYPE]
//
// It starts `sievefs mount -o OPTIONS LOWER MOUNTPOINT` in a new session,
// detached from the terminal, and exits 0 once the mount is up, or with the
// daemon's exit code and messages if it fails.
func runHelper(args []string, stdout, stderr io.Writer) int {
	var opts []string
	var pos []string
	fake := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "-t":
			if i+1 == len(args) {
				fmt.Fprintf(stderr, "%s: %s needs a value\n", helperName, a)
				return exitUsage
			}
			i++
			if a == "-o" {
				opts = append(opts, args[i])
			}
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, a[2:])
		case a == "-N":
			fmt.Fprintf(stderr, "%s: -N (another mount namespace) is not supported\n", helperName)
			return exitUsage
		case a == "-f":
			fake = true
		case a == "-r":
			opts = append(opts, "ro")
		case a == "-n", a == "-s", a == "-v", a == "-w":
			// no mtab, sloppy, verbose, read-write: nothing to do
		case a == "-h" || a == "--help":
			fmt.Fprintf(stdout, "usage: %s LOWER MOUNTPOINT [-o OPTIONS]\n", helperName)
			fmt.Fprintln(stdout, "The OPTIONS are those of sievefs mount: see 'sievefs help mount' and sievefs(8).")
			return exitOK
		case strings.HasPrefix(a, "-") && len(a) > 1:
			fmt.Fprintf(stderr, "%s: unknown argument %q\n", helperName, a)
			return exitUsage
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "usage: %s LOWER MOUNTPOINT [-o OPTIONS]\n", helperName)
		return exitUsage
	}
	if fake {
		return exitOK
	}
	// The daemon runs in /, so as not to keep the caller's directory busy.
	childArgs := []string{"mount"}
	for _, p := range pos {
		abs, err := filepath.Abs(p)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", helperName, err)
			return exitFailure
		}
		childArgs = append(childArgs, abs)
	}
	for _, o := range opts {
		childArgs = append(childArgs, "-o", o)
	}
	code, err := startDaemon(childArgs, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", helperName, err)
	}
	return code
}

// startDaemon runs this binary with args in a new session, with its standard
// files on /dev/null, and waits until it reports the mount up (exit code 0) or
// exits (its exit code, after copying its messages to stderr).
func startDaemon(args []string, stderr io.Writer) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return exitFailure, fmt.Errorf("find the sievefs binary: %w", err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return exitFailure, err
	}
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return exitFailure, fmt.Errorf("readiness pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{w} // descriptor 3
	for _, kv := range os.Environ() {
		// The daemon is not the unit's main process: it must not talk to
		// systemd in the helper's name.
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, readyEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, readyEnv+"=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return exitFailure, fmt.Errorf("start the daemon: %w", err)
	}
	out, err := bufio.NewReader(r).ReadBytes(0)
	if err == nil {
		cmd.Process.Release()
		return exitOK, nil
	}
	werr := cmd.Wait()
	stderr.Write(out)
	if code := cmd.ProcessState.ExitCode(); code > 0 {
		return code, nil
	}
	return exitFailure, fmt.Errorf("the daemon failed before mounting: %v", werr)
}

// readiness reports to a waiting helper (see readyEnv); without one it does
// nothing.
type readiness struct {
	mu   sync.Mutex
	pipe *os.File // nil once the mount is up, or when no helper waits
}

// readinessFromEnv takes the helper's descriptor named by readyEnv, if any.
func readinessFromEnv() *readiness {
	r := &readiness{}
	s := os.Getenv(readyEnv)
	if s == "" {
		return r
	}
	os.Unsetenv(readyEnv)
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return r
	}
	syscall.CloseOnExec(fd)
	r.pipe = os.NewFile(uintptr(fd), "readiness")
	return r
}

// tee returns a writer to w that also copies to the helper until the mount
// is up.
func (r *readiness) tee(w io.Writer) io.Writer { return teeWriter{r, w} }

type teeWriter struct {
	r *readiness
	w io.Writer
}

func (t teeWriter) Write(p []byte) (int, error) {
	t.r.mu.Lock()
	if t.r.pipe != nil {
		t.r.pipe.Write(p)
	}
	t.r.mu.Unlock()
	return t.w.Write(p)
}

// ready tells the helper that the mount is up, and lets it go.
func (r *readiness) ready() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pipe != nil {
		r.pipe.Write([]byte{0})
		r.pipe.Close()
		r.pipe = nil
	}
}

// installHelperUsage is the usage of sievefs install-helper.
const installHelperUsage = `sievefs install-helper [--prefix DIR] [--mandir DIR]

Links DIR/mount.fuse.sievefs to this binary, so that mount(8) finds it for
"mount -t fuse.sievefs" and fstab lines, and installs the manual page
sievefs(8) into MANDIR/man8 (also as mount.fuse.sievefs(8)).`

// runInstallHelper installs the mount helper and the manual page.
func runInstallHelper(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("sievefs install-helper", flag.ContinueOnError)
	prefix := f.String("prefix", "/sbin", "directory to install "+helperName+" into (mount(8) looks in /sbin)")
	mandir := f.String("mandir", "/usr/local/share/man", "manual directory to install sievefs(8) into, under man8; empty: none")
	pos, code, done := parseCommand(f, installHelperUsage, args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 0 {
		fmt.Fprintf(stderr, "sievefs install-helper: takes no arguments, got %d\n", len(pos))
		f.Usage()
		return exitUsage
	}
	if err := installHelper(*prefix); err != nil {
		fmt.Fprintf(stderr, "sievefs install-helper: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "installed %s\n", filepath.Join(*prefix, helperName))
	if *mandir == "" {
		return exitOK
	}
	pages, err := installManPage(*mandir)
	if err != nil {
		fmt.Fprintf(stderr, "sievefs install-helper: %v\n", err)
		return exitFailure
	}
	for _, p := range pages {
		fmt.Fprintf(stdout, "installed %s\n", p)
	}
	return exitOK
}

// installManPage writes sievefs(8) into mandir/man8, and
// mount.fuse.sievefs(8) as a page that sources it, and returns their paths.
func installManPage(mandir string) ([]string, error) {
	dir := filepath.Join(mandir, "man8")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("manual page: %w", err)
	}
	var paths []string
	for _, p := range []struct {
		name string
		data []byte
	}{
		{"sievefs.8", man.Page},
		{helperName + ".8", []byte(".so man8/sievefs.8\n")},
	} {
		path := filepath.Join(dir, p.name)
		if err := writeFileAtomic(path, p.data, 0o644); err != nil {
			return nil, fmt.Errorf("manual page: %w", err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// writeFileAtomic replaces path with a file of data: readers see the old
// file or the new one, never a part.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// installHelper makes dir/mount.fuse.sievefs a symlink to this binary,
// replacing an older symlink but not a file.
func installHelper(dir string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the sievefs binary: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return fmt.Errorf("find the sievefs binary: %w", err)
	}
	dst := filepath.Join(dir, helperName)
	if fi, err := os.Lstat(dst); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("%s exists and is not a symlink; remove it first", dst)
	}
	tmp := dst + ".new"
	os.Remove(tmp)
	if err := os.Symlink(exe, tmp); err != nil {
		return fmt.Errorf("install helper: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("install helper: %w", err)
	}
	return nil
}
