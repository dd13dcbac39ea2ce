package sievefs_test

import (
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sievefs/sievefs"
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
	writeFile(t, v.LowerPath("f"), randomBytes(t, 1<<16))
	if got := readFile(t, v.Path("f")); len(got) != 1<<16 {
		t.Fatalf("read %d bytes", len(got))
	}
	if _, err := os.Stat(v.Path("missing")); !os.IsNotExist(err) {
		t.Fatalf("stat of a missing file: %v", err)
	}
	if err := os.Mkdir(v.Path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, v.Path("d/g"), []byte("x"))
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
	if n := m["sievefs_errors_total"]["directory not empty"].GetCounter().GetValue(); n != 1 {
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
