package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sievefs/sievefs"
)

// serveMetrics serves the mount's Prometheus metrics, and the daemon
// process's, on l at /metrics until the returned server is closed.
// logDropped returns how many log lines the daemon has lost.
func serveMetrics(l net.Listener, m *sievefs.Mount, logger *slog.Logger, logDropped func() uint64) *http.Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
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
