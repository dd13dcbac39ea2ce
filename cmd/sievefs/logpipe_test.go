package main

// Tests of the daemon with its stderr on a pipe whose reader goes away or
// stops reading: logging must neither kill it (SIGPIPE) nor stall it.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sievefs/sievefs/control"
)

// pipedDaemon is a `sievefs mount` whose stderr is the write end of a pipe;
// the test holds the read end.
type pipedDaemon struct {
	cmd    *exec.Cmd
	stderr *os.File // the read end of the daemon's stderr
	exited chan struct{}
	err    error // what Wait returned, once exited is closed
}

// startPiped runs the binary with args, a `mount …` onto mnt, with its stderr
// on a new pipe, and waits until the mount serves and the daemon answers on
// its control socket. Cleanup closes the pipe (so that an old daemon stuck
// writing to it moves on), terminates and reaps the daemon, and detaches
// what it left mounted.
func startPiped(t *testing.T, mnt string, args ...string) *pipedDaemon {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &pipedDaemon{cmd: exec.Command(binary(t), args...), stderr: r, exited: make(chan struct{})}
	d.cmd.Stderr = w
	err = d.cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		r.Close()
		select {
		case <-d.exited:
		default:
			d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.exited:
			case <-time.After(10 * time.Second):
				t.Errorf("sievefs ignored SIGTERM for 10s, killing it")
				d.cmd.Process.Kill()
				<-d.exited
			}
		}
		detachAll(t, mnt)
	})
	for deadline := time.Now().Add(10 * time.Second); !serving(mnt) || !answers(mnt); time.Sleep(10 * time.Millisecond) {
		select {
		case <-d.exited:
			t.Fatalf("sievefs exited before mounting: %v", d.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sievefs mount ready on %s after 10s", mnt)
		}
	}
	return d
}

// wait waits up to timeout (a bound against hanging) for the daemon to exit
// and returns its exit code, failing the test if it died of a signal.
func (d *pipedDaemon) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-d.exited:
	case <-time.After(timeout):
		t.Fatalf("sievefs did not exit within %v", timeout)
	}
	var ee *exec.ExitError
	if d.err != nil && !errors.As(d.err, &ee) {
		t.Fatalf("wait: %v", d.err)
	}
	if ws, ok := d.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("sievefs died of %v", ws.Signal())
	}
	return d.cmd.ProcessState.ExitCode()
}

// TestLogPipeClosed: stderr on a pipe whose reader goes away after the first
// line (`sievefs mount … 2>&1 | head -1`). The daemon's next log lines fail
// with EPIPE; it must go on serving, and SIGTERM must unmount it cleanly
// (before the fix it died of SIGPIPE, leaving a dead mount).
func TestLogPipeClosed(t *testing.T) {
	requireFuse(t)
	base, lower, mnt := policyDirs(t)
	pf := writePolicy(t, base, "policy.yaml", "rules:\n  - hide: [a.txt]\n")
	d := startPiped(t, mnt, "mount", "--policy", pf, lower, mnt)

	d.stderr.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(d.stderr).ReadString('\n')
	if err != nil {
		t.Fatalf("first log line: %q, %v", line, err)
	}
	d.stderr.Close()

	// A reload that fails is logged (at level error) once status shows it.
	writePolicy(t, base, "policy.yaml", "rules:\n  - hidden: [a.txt]\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-d.exited:
			t.Fatalf("the daemon exited after SIGHUP (%v): its log writes killed it", d.err)
		default:
		}
		if st, err := control.Query(control.SocketPath(mnt, 0)); err == nil && st.PolicyError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("after 10s: status shows no failed reload")
		}
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "b.txt")); err != nil || string(b) != "b.txt" {
		t.Errorf("read after SIGHUP: %q, %v", b, err)
	}

	d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(t, 30*time.Second); code != exitOK {
		t.Errorf("exit code %d after SIGTERM, want %d", code, exitOK)
	}
	if mountedOn(mnt) {
		t.Errorf("%s still mounted after the daemon exited", mnt)
	}
}

// logFiles is how many files logPipeOps makes. With --debug --fuse-debug
// every request logs a few lines, so that they log megabytes: far more than
// a pipe (64 KiB) and the daemon's log buffer (logBufferSize) hold.
const logFiles = 2000

// logPipeOps creates, stats, reads and removes logFiles files through the
// mount, and fails the test if they do not all complete within two minutes
// (a bound against a stalled daemon, not a timing requirement).
func logPipeOps(t *testing.T, mnt string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			for i := 0; i < logFiles; i++ {
				name := filepath.Join(mnt, fmt.Sprintf("f%d", i))
				if err := os.WriteFile(name, []byte(name), 0o644); err != nil {
					return err
				}
				if _, err := os.Stat(name); err != nil {
					return err
				}
				if b, err := os.ReadFile(name); err != nil || string(b) != name {
					return fmt.Errorf("read %s: %q, %v", name, b, err)
				}
				if err := os.Remove(name); err != nil {
					return err
				}
			}
			return nil
		}()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("file operations through the mount still not done after 2 minutes: the daemon stalls on its log")
	}
}

// TestLogPipeUnread: stderr on a pipe nobody reads, with debug logging of
// every request. File operations must all complete (before the fix the
// daemon blocked in its first write to the full pipe, and every request
// with it), and SIGTERM must unmount cleanly.
func TestLogPipeUnread(t *testing.T) {
	requireFuse(t)
	t.Run("NeverRead", func(t *testing.T) {
		lower, mnt := viewDirs(t)
		d := startPiped(t, mnt, "mount", "--debug", "--fuse-debug", lower, mnt)
		logPipeOps(t, mnt)
		d.cmd.Process.Signal(syscall.SIGTERM)
		if code := d.wait(t, 30*time.Second); code != exitOK {
			t.Errorf("exit code %d after SIGTERM, want %d", code, exitOK)
		}
		if mountedOn(mnt) {
			t.Errorf("%s still mounted after the daemon exited", mnt)
		}
	})
	t.Run("ReadLate", func(t *testing.T) {
		// The reader comes back: one line says how many lines were
		// dropped, and the lines logged after it are all there.
		lower, mnt := viewDirs(t)
		d := startPiped(t, mnt, "mount", "--debug", "--fuse-debug", lower, mnt)
		logPipeOps(t, mnt)
		notice := make(chan string, 1)
		all := make(chan string, 1)
		go func() {
			var b strings.Builder
			br := bufio.NewReader(d.stderr)
			for {
				line, err := br.ReadString('\n')
				b.WriteString(line)
				if strings.Contains(line, `msg="log lines dropped`) {
					select {
					case notice <- line:
					default:
					}
				}
				if err != nil {
					all <- b.String()
					return
				}
			}
		}()
		select {
		case line := <-notice:
			t.Logf("after the reader came back: %s", strings.TrimSpace(line))
			if !strings.Contains(line, "level=WARN") || strings.Contains(line, "lines=0") {
				t.Errorf("notice of dropped lines: %q", line)
			}
		case <-time.After(time.Minute):
			t.Fatal("no notice of dropped lines after the reader came back")
		}
		d.cmd.Process.Signal(syscall.SIGTERM)
		if code := d.wait(t, 30*time.Second); code != exitOK {
			t.Errorf("exit code %d after SIGTERM, want %d", code, exitOK)
		}
		var out string
		select {
		case out = <-all:
		case <-time.After(time.Minute):
			t.Fatal("stderr not closed after the daemon exited")
		}
		if !strings.Contains(out, "msg=unmounting signal=terminated") {
			t.Errorf("the last log lines are missing; the output ends with:\n%s", tail(out, 1000))
		}
	})
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
