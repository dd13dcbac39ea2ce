package sievefs

import (
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
)

// op is the operation a request is counted under.
type op = filter.Op

const numOps = filter.NumOps

// latencyBuckets are the upper bounds of the latency histogram, in seconds.
var latencyBuckets = [...]float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 5e-3, 25e-3, 100e-3, 1}

// opStats counts requests, errors and latencies with atomics only, so that
// the request path never takes a lock or calls into the metrics library; a
// Prometheus scrape reads them (see collector).
type opStats struct {
	requests [numOps]atomic.Uint64
	errors   [numOps]atomic.Uint64
	nanos    [numOps]atomic.Uint64
	buckets  [numOps][len(latencyBuckets)]atomic.Uint64
	errnos   [256]atomic.Uint64
}

// track records one finished request; handlers call it deferred:
//
//	defer fs.track(filter.OpLookup, time.Now(), &code)
func (fs *fileSystem) track(o op, start time.Time, code *fuse.Status) {
	d := time.Since(start)
	s := &fs.stats
	s.requests[o].Add(1)
	s.nanos[o].Add(uint64(d))
	secs := d.Seconds()
	for i, b := range latencyBuckets {
		if secs <= b {
			s.buckets[o][i].Add(1)
			break
		}
	}
	if *code != fuse.OK {
		s.errors[o].Add(1)
		if e := int(*code); e > 0 && e < len(s.errnos) {
			s.errnos[e].Add(1)
		}
	}
	if fs.opts.Debug {
		fs.log.Debug("request", "op", o.String(), "errno", int(*code), "duration", d)
	}
}

// trackNoStatus records a request that has no reply status (forget, release).
func (fs *fileSystem) trackNoStatus(o op, start time.Time) {
	ok := fuse.OK
	fs.track(o, start, &ok)
}

// Requests returns how many requests of the named operation the daemon has
// served.
func (m *Mount) Requests(opName string) uint64 {
	n, _ := m.RequestTime(opName)
	return n
}

// RequestTime returns how many requests of the named operation the daemon
// has served and the time it spent on them (from receiving each to
// answering it, not counting the trip through the kernel).
func (m *Mount) RequestTime(opName string) (uint64, time.Duration) {
	if o, ok := filter.ParseOp(opName); ok {
		return m.fs.stats.requests[o].Load(), time.Duration(m.fs.stats.nanos[o].Load())
	}
	return 0, 0
}

// Collector returns a Prometheus collector of the mount's metrics. Several
// mounts register with a label each (see prometheus.WrapRegistererWith).
func (m *Mount) Collector() prometheus.Collector { return &collector{m: m} }

var (
	descRequests = prometheus.NewDesc("sievefs_requests_total", "FUSE requests served, by operation.", []string{"op"}, nil)
	descErrors   = prometheus.NewDesc("sievefs_request_errors_total", "FUSE requests answered with an error, by operation.", []string{"op"}, nil)
	descLatency  = prometheus.NewDesc("sievefs_request_duration_seconds", "Time the daemon spent on FUSE requests, by operation.", []string{"op"}, nil)
	descErrnos   = prometheus.NewDesc("sievefs_errors_total", "Error replies by errno.", []string{"errno"}, nil)
	descOpens    = prometheus.NewDesc("sievefs_opens_total", "File opens by who serves their data.", []string{"mode"}, nil)
	descOpen     = prometheus.NewDesc("sievefs_open_files", "Files open now by who serves their data.", []string{"mode"}, nil)
	descBacking  = prometheus.NewDesc("sievefs_backing_files", "Backing files held for passthrough.", nil, nil)
	descOverBudg = prometheus.NewDesc("sievefs_backing_over_budget_total", "Opens served by the daemon because the backing-file budget was full.", nil, nil)
	descInodes   = prometheus.NewDesc("sievefs_inodes", "Inodes in the daemon's table.", nil, nil)
	descInodeFDs = prometheus.NewDesc("sievefs_inode_fds", "O_PATH descriptors the inode table holds.", nil, nil)
	descFilter   = prometheus.NewDesc("sievefs_filter_decisions_total", "Decisions of each policy rule (rule is index:kind; counts restart when the policy is reloaded).", []string{"rule", "decision"}, nil)
)

type collector struct{ m *Mount }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descErrors, descLatency, descErrnos, descOpens, descOpen, descBacking, descOverBudg, descInodes, descInodeFDs, descFilter} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := &c.m.fs.stats
	for o := range numOps {
		n := s.requests[o].Load()
		if n == 0 {
			continue
		}
		name := o.String()
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), name)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(s.errors[o].Load()), name)
		buckets := make(map[float64]uint64, len(latencyBuckets))
		var cum uint64
		for i, b := range latencyBuckets {
			cum += s.buckets[o][i].Load()
			buckets[b] = cum
		}
		ch <- prometheus.MustNewConstHistogram(descLatency, n, time.Duration(s.nanos[o].Load()).Seconds(), buckets, name)
	}
	for e := range s.errnos {
		if n := s.errnos[e].Load(); n > 0 {
			ch <- prometheus.MustNewConstMetric(descErrnos, prometheus.CounterValue, float64(n), errnoLabel(syscall.Errno(e)))
		}
	}
	st := c.m.Status()
	ch <- prometheus.MustNewConstMetric(descOpens, prometheus.CounterValue, float64(st.Counters.BackingRegistered+st.Counters.BackingShared), "passthrough")
	ch <- prometheus.MustNewConstMetric(descOpens, prometheus.CounterValue, float64(st.Counters.DaemonServedOpens), "daemon")
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(st.OpenFiles.Passthrough), "passthrough")
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(st.OpenFiles.DaemonServed), "daemon")
	ch <- prometheus.MustNewConstMetric(descBacking, prometheus.GaugeValue, float64(len(st.BackingFiles)))
	ch <- prometheus.MustNewConstMetric(descOverBudg, prometheus.CounterValue, float64(st.Counters.BackingOverBudget))
	ch <- prometheus.MustNewConstMetric(descInodes, prometheus.GaugeValue, float64(st.Counters.Inodes))
	ch <- prometheus.MustNewConstMetric(descInodeFDs, prometheus.GaugeValue, float64(st.Counters.InodeFDs))
	for _, rule := range st.Filters {
		for d, n := range rule.Decisions {
			ch <- prometheus.MustNewConstMetric(descFilter, prometheus.CounterValue, float64(n), rule.Rule, string(d))
		}
	}
}

// errnoLabel names an errno as C does ("ENOENT"), the number for one
// without a name.
func errnoLabel(e syscall.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return strconv.Itoa(int(e))
}
