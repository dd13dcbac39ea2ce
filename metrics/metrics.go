// Package metrics exports the metrics of a sievefs mount to Prometheus.
//
// It is a package of its own so that a program that mounts views without
// serving metrics does not link the Prometheus client: the root package
// counts requests with atomics only and hands them out through
// sievefs.Mount.RequestStats and sievefs.Mount.Status, which the collector
// reads at scrape time. The metric names, help texts and labels are a
// contract: docs/operations.md lists them.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.NewCollector(m))
//
// Several mounts in one registry each need a label of their own (see
// prometheus.WrapRegistererWith).
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sievefs/sievefs"
)

// NewCollector returns a Prometheus collector of the mount's metrics.
func NewCollector(m *sievefs.Mount) prometheus.Collector { return &collector{m: m} }

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

type collector struct{ m *sievefs.Mount }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descErrors, descLatency, descErrnos, descOpens, descOpen, descBacking, descOverBudg, descInodes, descInodeFDs, descFilter} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	rs := c.m.RequestStats()
	for _, s := range rs.Ops {
		name := s.Op.String()
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(s.Requests), name)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(s.Errors), name)
		buckets := make(map[float64]uint64, len(s.Latency))
		for _, b := range s.Latency {
			buckets[b.UpTo.Seconds()] = b.Requests
		}
		ch <- prometheus.MustNewConstHistogram(descLatency, s.Requests, s.Time.Seconds(), buckets, name)
	}
	for errno, n := range rs.Errnos {
		ch <- prometheus.MustNewConstMetric(descErrnos, prometheus.CounterValue, float64(n), errno)
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
