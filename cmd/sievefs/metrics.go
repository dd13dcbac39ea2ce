package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/metrics"
)

// metricsSocketMode is the default mode of a unix metrics socket: only the
// daemon's user may connect. The metrics tell, for instance, how many
// entries the policy hid from a listing (see docs/operations.md).
const metricsSocketMode = 0o600

// serveMetrics serves the mount's Prometheus metrics, and the daemon
// process's, on l at /metrics until the returned server is closed.
// logDropped returns how many log lines the daemon has lost.
func serveMetrics(l net.Listener, m *sievefs.Mount, logger *slog.Logger, logDropped func() uint64) *http.Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(m), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sievefs_log_dropped_lines_total",
			Help: "Log lines lost because the log output was full or failing.",
		}, func() float64 { return float64(logDropped()) }))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server", "err", err)
		}
	}()
	return srv
}

// listenMetrics binds the metrics address: HOST:PORT for TCP, or
// unix:PATH for a unix socket of the given mode (see listenMetricsUnix).
func listenMetrics(addr string, mode os.FileMode) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return listenMetricsUnix(path, mode)
	}
	return net.Listen("tcp", addr)
}

// listenMetricsUnix makes a unix socket at path, an absolute path (not an
// abstract socket, which has no permissions), owned by the daemon's user and
// never more open than mode. A socket left at path by a daemon that died is
// replaced; anything else there is an error. Closing the listener removes
// the socket, unless it has been replaced since.
func listenMetricsUnix(path string, mode os.FileMode) (net.Listener, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("unix socket %q: want an absolute path", path)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	// Bound with the owner's permissions only, so that nobody else may
	// connect before the chmod. The umask belongs to the process: nothing
	// else makes files while the daemon starts.
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	l := &unixListener{UnixListener: ln, path: path}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("unix socket: %w", err)
	}
	if err := unix.Lstat(path, &l.sock); err != nil {
		ln.Close()
		return nil, fmt.Errorf("unix socket %s: %w", path, err)
	}
	return l, nil
}

// removeStaleSocket removes the socket at path if it refuses connections
// (its daemon died). It fails if path exists and is anything else.
func removeStaleSocket(path string) error {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case err != nil:
		return fmt.Errorf("unix socket %s: %w", path, err)
	case st.Mode&unix.S_IFMT != unix.S_IFSOCK:
		return fmt.Errorf("unix socket %s: the path exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("unix socket %s: in use (a process listens on it)", path)
	}
	if !errors.Is(err, unix.ECONNREFUSED) {
		return fmt.Errorf("unix socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove the stale unix socket: %w", err)
	}
	return nil
}

// unixListener removes its socket file when closed, unless another has
// taken its path.
type unixListener struct {
	*net.UnixListener
	path string
	sock unix.Stat_t // the socket file, as made
	once sync.Once
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		var st unix.Stat_t
		if unix.Lstat(l.path, &st) == nil && st.Dev == l.sock.Dev && st.Ino == l.sock.Ino {
			os.Remove(l.path)
		}
	})
	return err
}
