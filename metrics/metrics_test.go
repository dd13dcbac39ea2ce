package metrics_test

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/filter/readonly"
	"github.com/sievefs/sievefs/internal/fusetest"
	"github.com/sievefs/sievefs/metrics"
)

// writeFile writes data to path, failing the test on error.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// families collects the mount's metrics through a pedantic registry, which
// also checks them against their descriptions.
func families(t *testing.T, m *sievefs.Mount) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.NewCollector(m))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// gather collects the mount's metrics into name → label value → metric.
func gather(t *testing.T, m *sievefs.Mount) map[string]map[string]*dto.Metric {
	t.Helper()
	out := map[string]map[string]*dto.Metric{}
	for _, f := range families(t, m) {
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
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<12)
	writeFile(t, v.LowerPath("f"), data)
	if got, err := os.ReadFile(v.Path("f")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, want %d: %v", len(got), len(data), err)
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
	if n := m["sievefs_errors_total"]["ENOTEMPTY"].GetCounter().GetValue(); n != 1 {
		t.Errorf("ENOTEMPTY errors %v, want 1", n)
	}
	h := m["sievefs_request_duration_seconds"]["mkdir"].GetHistogram()
	if h.GetSampleCount() != 1 || len(h.GetBucket()) == 0 {
		t.Errorf("mkdir latency histogram: %d samples, %d buckets; want 1 sample", h.GetSampleCount(), len(h.GetBucket()))
	}
	var prev uint64
	for _, b := range h.GetBucket() {
		if n := b.GetCumulativeCount(); n < prev || n > h.GetSampleCount() {
			t.Errorf("mkdir latency bucket le=%v counts %d after %d, of %d samples: not cumulative", b.GetUpperBound(), n, prev, h.GetSampleCount())
		}
		prev = b.GetCumulativeCount()
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

// policyView mounts a view with a rule that hides "secret" and one that
// protects "frozen", and makes each rule decide something.
func policyView(t *testing.T) *fusetest.View {
	t.Helper()
	rules := []filter.Rule{
		{Filter: hide.New(filter.Patterns{filter.MustPattern("secret")})},
		{Filter: readonly.New(filter.Patterns{filter.MustPattern("frozen")})},
	}
	v := fusetest.Mount(t, sievefs.Options{Rules: rules})
	writeFile(t, v.LowerPath("secret"), []byte("s"))
	writeFile(t, v.LowerPath("frozen"), []byte("f"))
	writeFile(t, v.LowerPath("plain"), []byte("p"))
	if _, err := os.ReadDir(v.Mnt); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.Path("secret")); !os.IsNotExist(err) {
		t.Fatalf("stat of a hidden file: %v", err)
	}
	if err := os.WriteFile(v.Path("frozen"), []byte("x"), 0); err == nil {
		t.Fatal("wrote a read-only file")
	}
	return v
}

// TestMetricsFilterDecisions checks that each policy rule's decisions are
// exported, labelled by rule and decision.
func TestMetricsFilterDecisions(t *testing.T) {
	v := policyView(t)
	got := map[string]float64{}
	for _, f := range families(t, v.Mount) {
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

// contract is every metric of the collector: its name, type, labels
// (sorted) and help text, as dashboards and alerts rely on them. Change it
// only on purpose, together with docs/operations.md.
var contract = []string{
	`sievefs_backing_files GAUGE [] "Backing files held for passthrough."`,
	`sievefs_backing_over_budget_total COUNTER [] "Opens served by the daemon because the backing-file budget was full."`,
	`sievefs_errors_total COUNTER [errno] "Error replies by errno."`,
	`sievefs_filter_decisions_total COUNTER [decision rule] "Decisions of each policy rule (rule is index:kind; counts restart when the policy is reloaded)."`,
	`sievefs_inode_fds GAUGE [] "O_PATH descriptors the inode table holds."`,
	`sievefs_inodes GAUGE [] "Inodes in the daemon's table."`,
	`sievefs_open_files GAUGE [mode] "Files open now by who serves their data."`,
	`sievefs_opens_total COUNTER [mode] "File opens by who serves their data."`,
	`sievefs_request_duration_seconds HISTOGRAM [op] "Time the daemon spent on FUSE requests, by operation." le [5e-06 1e-05 2.5e-05 5e-05 0.0001 0.00025 0.0005 0.001 0.005 0.025 0.1 1]`,
	`sievefs_request_errors_total COUNTER [op] "FUSE requests answered with an error, by operation."`,
	`sievefs_requests_total COUNTER [op] "FUSE requests served, by operation."`,
}

// TestMetricsContract checks the names, types, labels, help texts and
// histogram buckets of the metrics against the contract, and that
// docs/operations.md lists each metric with its labels.
func TestMetricsContract(t *testing.T) {
	v := policyView(t)
	var got []string
	labels := map[string][]string{}
	for _, f := range families(t, v.Mount) {
		m := f.GetMetric()[0]
		ls := []string{}
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName())
		}
		labels[f.GetName()] = ls
		line := fmt.Sprintf("%s %s %v %q", f.GetName(), f.GetType(), ls, f.GetHelp())
		if h := m.GetHistogram(); h != nil {
			var le []float64
			for _, b := range h.GetBucket() {
				le = append(le, b.GetUpperBound())
			}
			line += fmt.Sprintf(" le %v", le)
		}
		got = append(got, line)
	}
	if !slices.Equal(got, contract) {
		t.Errorf("metrics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(contract, "\n"))
	}

	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{}
	row := regexp.MustCompile("(?m)^\\| (`sievefs_.*?) \\|(.*?)\\|")
	tick := regexp.MustCompile("`([a-z_]+)`")
	for _, r := range row.FindAllStringSubmatch(string(doc), -1) {
		var ls []string
		for _, l := range tick.FindAllStringSubmatch(r[2], -1) {
			ls = append(ls, l[1])
		}
		for _, name := range tick.FindAllStringSubmatch(r[1], -1) {
			documented[name[1]] = ls
		}
	}
	for name, ls := range labels {
		if d, ok := documented[name]; !ok || !slices.Equal(slices.Sorted(slices.Values(d)), slices.Sorted(slices.Values(ls))) {
			t.Errorf("docs/operations.md: %s with labels %v, want labels %v", name, d, ls)
		}
	}
	for _, line := range got {
		delete(documented, strings.Fields(line)[0])
	}
	delete(documented, "sievefs_log_dropped_lines_total") // served by the command
	if len(documented) > 0 {
		t.Errorf("docs/operations.md lists metrics the collector lacks: %v", documented)
	}
}
