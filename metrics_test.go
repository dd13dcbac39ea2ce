package sievefs_test

import (
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/filter/readonly"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// gather collects the mount's metrics into name → label value → metric.
func gather(t *testing.T, m *sievefs.Mount) map[string]map[string]*dto.Metric {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]*dto.Metric{}
	for _, f := range families {
		out[f.GetName()] = map[string]*dto.Metric{}
		for _, metric := range f.GetMetric() {
			label := ""
			if len(metric.GetLabel()) > 0 {
				label = metric.GetLabel()[0].GetValue()
			}
			out[f.GetName()][label] = metric
		}
	}
	return out
}

// TestMetrics checks that requests, errors, latencies and opens are counted.
func TestMetrics(t *testing.T) {
	v := fusetest.Mount(t, sievefs.Options{})
	fusetest.WriteFile(t, v.LowerPath("f"), fusetest.RandomBytes(t, 1<<16))
	if got := fusetest.ReadFile(t, v.Path("f")); len(got) != 1<<16 {
		t.Fatalf("read %d bytes", len(got))
	}
	if _, err := os.Stat(v.Path("missing")); !os.IsNotExist(err) {
		t.Fatalf("stat of a missing file: %v", err)
	}
	if err := os.Mkdir(v.Path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	fusetest.WriteFile(t, v.Path("d/g"), []byte("x"))
	if err := os.Remove(v.Path("d")); err == nil {
		t.Fatal("rmdir of a non-empty directory succeeded")
	}

	m := gather(t, v.Mount)
	if n := m["sievefs_requests_total"]["lookup"].GetCounter().GetValue(); n < 1 {
		t.Errorf("lookup requests %v, want >= 1", n)
	}
	if n := m["sievefs_request_errors_total"]["rmdir"].GetCounter().GetValue(); n != 1 {
		t.Errorf("rmdir errors %v, want 1", n)
	}
	if n := m["sievefs_errors_total"]["ENOTEMPTY"].GetCounter().GetValue(); n != 1 {
		t.Errorf("ENOTEMPTY errors %v, want 1", n)
	}
	h := m["sievefs_request_duration_seconds"]["mkdir"].GetHistogram()
	if h.GetSampleCount() != 1 || len(h.GetBucket()) == 0 {
		t.Errorf("mkdir latency histogram: %d samples, %d buckets; want 1 sample", h.GetSampleCount(), len(h.GetBucket()))
	}
	if v.Mount.Status().Passthrough.Active {
		if n := m["sievefs_opens_total"]["passthrough"].GetCounter().GetValue(); n < 1 {
			t.Errorf("passthrough opens %v, want >= 1", n)
		}
		if v.Mount.Requests("read") != 0 {
			t.Errorf("the daemon served %d reads of a passthrough file", v.Mount.Requests("read"))
		}
	}
	if n := m["sievefs_inodes"][""].GetGauge().GetValue(); n < 2 {
		t.Errorf("inodes %v, want >= 2", n)
	}
}

// TestMetricsFilterDecisions checks that each policy rule's decisions are
// exported, labelled by rule and decision.
func TestMetricsFilterDecisions(t *testing.T) {
	rules := []filter.Rule{
		{Filter: hide.New(filter.Patterns{filter.MustPattern("secret")})},
		{Filter: readonly.New(filter.Patterns{filter.MustPattern("frozen")})},
	}
	v := fusetest.Mount(t, sievefs.Options{Rules: rules})
	fusetest.WriteFile(t, v.LowerPath("secret"), []byte("s"))
	fusetest.WriteFile(t, v.LowerPath("frozen"), []byte("f"))
	fusetest.WriteFile(t, v.LowerPath("plain"), []byte("p"))
	if _, err := os.ReadDir(v.Mnt); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.Path("secret")); !os.IsNotExist(err) {
		t.Fatalf("stat of a hidden file: %v", err)
	}
	if err := os.WriteFile(v.Path("frozen"), []byte("x"), 0); err == nil {
		t.Fatal("wrote a read-only file")
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(v.Mount.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "sievefs_filter_decisions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["rule"]+" "+labels["decision"]] = m.GetCounter().GetValue()
		}
	}
	for _, key := range []string{"1:hide drop", "1:hide error", "2:readonly error"} {
		if got[key] < 1 {
			t.Errorf("sievefs_filter_decisions_total{%s} = %v, want >= 1 (all: %v)", key, got[key], got)
		}
	}
}
