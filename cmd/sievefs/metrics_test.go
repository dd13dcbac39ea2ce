package main

// Tests of --metrics-addr: a unix socket only the daemon's user may use, and
// TCP.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dialEnv makes the test binary, run as another user by TestMain, connect
// to the unix socket it names and exit: 0 if it connected, 1 if not.
const dialEnv = "SIEVEFS_TEST_DIAL"

// dialUnix connects to the unix socket at path and reports how it went.
func dialUnix(path string) int {
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c.Close()
	fmt.Println("connected")
	return 0
}

// scrape gets /metrics through dial.
func scrape(t *testing.T, dial func() (net.Conn, error)) string {
	t.Helper()
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			return dial()
		}},
	}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://sievefs/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s, %v", resp.Status, err)
	}
	return string(b)
}

// checkMetrics checks that a scrape has the mount's metrics.
func checkMetrics(t *testing.T, body string) {
	t.Helper()
	for _, w := range []string{"\nsievefs_inodes ", `sievefs_requests_total{op="getattr"}`, "\nsievefs_log_dropped_lines_total 0\n"} {
		if !strings.Contains(body, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}

// sharedTempDir makes a temporary directory that other users may search
// (t.TempDir's parent is private), removed at the end of the test.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sievefs-metrics-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMetricsUnixSocket(t *testing.T) {
	requireFuse(t)
	dir := sharedTempDir(t)
	sock := filepath.Join(dir, "metrics.sock")
	lower, mnt := viewDirs(t)
	d := startView(t, mnt, nil, "mount", "--metrics-addr", "unix:"+sock, lower, mnt)

	var st syscall.Stat_t
	if err := syscall.Lstat(sock, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK || st.Mode&0o7777 != 0o600 || st.Uid != 0 {
		t.Errorf("socket mode %o owner %d, want a socket of mode 600 owned by root", st.Mode, st.Uid)
	}
	checkMetrics(t, scrape(t, func() (net.Conn, error) { return net.Dial("unix", sock) }))

	t.Run("OtherUserRefused", func(t *testing.T) {
		// This test binary, run as uid 65534, connects to the socket.
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		dialer := filepath.Join(dir, "dial.test")
		if err := os.WriteFile(dialer, b, 0o755); err != nil {
			t.Fatal(err)
		}
		nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
		t.Setenv(dialEnv, sock)
		r := runAs(t, nobody, dialer)
		if r.code != 1 || !strings.Contains(r.stderr, "permission denied") {
			t.Errorf("uid 65534 connecting: exit %d, want 1 with permission denied; stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		// The socket's mode is what refused it: opened to all, it lets
		// the same user in.
		if err := os.Chmod(sock, 0o666); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(sock, 0o600)
		if r := runAs(t, nobody, dialer); r.code != 0 {
			t.Errorf("uid 65534 connecting to a socket of mode 666: exit %d; stderr %q", r.code, r.stderr)
		}
	})

	t.Run("RemovedAtExit", func(t *testing.T) {
		d.Signal(t, syscall.SIGTERM)
		if code := d.Wait(t, 30*time.Second); code != exitOK {
			t.Errorf("exit code %d; stderr:\n%s", code, d.Stderr)
		}
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("socket left after the daemon exited: %v", err)
		}
	})

	t.Run("Mode", func(t *testing.T) {
		lower, mnt := viewDirs(t)
		startView(t, mnt, nil, "mount", "--metrics-addr", "unix:"+sock, "-o", "metrics_mode=0660", lower, mnt)
		fi, err := os.Lstat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o660 {
			t.Errorf("socket mode %v with metrics_mode=0660", fi.Mode())
		}
	})
}

func TestMetricsTCP(t *testing.T) {
	requireFuse(t)
	lower, mnt := viewDirs(t)
	d := startView(t, mnt, nil, "mount", "--metrics-addr", "127.0.0.1:0", lower, mnt)
	re := regexp.MustCompile(`msg="serving metrics" addr=(127\.0\.0\.1:[0-9]+)`)
	var addr string
	eventually(t, "the daemon logs its metrics address", func() bool {
		m := re.FindStringSubmatch(d.Stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	checkMetrics(t, scrape(t, func() (net.Conn, error) { return net.Dial("tcp", addr) }))
}

// TestMetricsAddrRefused: a metrics address that cannot be served is a usage
// error, and nothing is mounted.
func TestMetricsAddrRefused(t *testing.T) {
	requireFuse(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.sock")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lower, mnt := viewDirs(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-addr", "unix:" + file}, "exists and is not a socket"},
		{[]string{"--metrics-addr", "unix:" + live}, "in use"},
		{[]string{"--metrics-addr", "unix:metrics.sock"}, "want an absolute path"},
		{[]string{"--metrics-addr", "unix:@abstract"}, "want an absolute path"},
		{[]string{"--metrics-addr", "127.0.0.1:0", "--metrics-mode", "0660"}, "--metrics-mode applies to a unix: --metrics-addr only"},
		{[]string{"--metrics-addr", "unix:" + filepath.Join(dir, "m.sock"), "--metrics-mode", "0999"}, "want an octal mode"},
	} {
		r := runBinary(t, append(append([]string{"mount"}, c.args...), lower, mnt)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: exit %d, want %d with %q; stderr:\n%s", c.args, r.code, exitUsage, c.want, r.stderr)
		}
		if mountedOn(mnt) {
			t.Fatalf("%q: mounted", c.args)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep" {
		t.Errorf("the file in the way: %q, %v", b, err)
	}
}

// TestMetricsStaleSocket: a socket left by a daemon that died is replaced,
// and removed when the new listener closes.
func TestMetricsStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("the stale socket accepts connections")
	}
	l, err := listenMetricsUnix(path, 0o600)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("connect to the new socket: %v", err)
	}
	c.Close()
	l.Close()
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}
}
