package systest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// BenchmarkFilterRules measures what the filter chain costs on a real mount:
// lookup+getattr (stat of a file, with caching off so that every stat goes to
// the daemon) and readdirplus of a 100-entry directory, without a policy and
// with policies of 0, 1 and 10 rules (bench/policy10.yaml, whose rules match
// none of the paths used, so every request pays for evaluating them).
// Besides the client's ns/op, which a FUSE round trip dominates, it reports
// the daemon's own time per lookup, getattr and readdirplus request, where
// the chain's cost shows.
//
//	go test -run XXX -bench FilterRules -benchtime 1000x ./systest/
func BenchmarkFilterRules(b *testing.B) {
	ten, err := os.ReadFile("../bench/policy10.yaml")
	if err != nil {
		b.Fatal(err)
	}
	policies := []struct{ name, yaml string }{
		{"none", ""},
		{"rules=0", "rules: []\n"},
		{"rules=1", "rules:\n  - hide: [\"no-such-secrets/**\", \"**/.no-such-env\"]\n"},
		{"rules=10", string(ten)},
	}
	low := b.TempDir()
	dir := filepath.Join(low, "src", "pkg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.go", i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, p := range policies {
		opts := sievefs.Options{Cache: sievefs.CacheNever}
		if p.yaml != "" {
			opts.Rules = fusetest.PolicyRules(b, p.name, []byte(p.yaml))
		}
		v := fusetest.MountLower(b, low, opts)
		b.Run(p.name+"/stat", func(b *testing.B) {
			b.ReportAllocs()
			defer reportDaemonTime(b, v.Mount, "lookup", "getattr")()
			i := 0
			for b.Loop() {
				if _, err := os.Lstat(v.Path(fmt.Sprintf("src/pkg/f%03d.go", i%100))); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(p.name+"/readdirplus", func(b *testing.B) {
			b.ReportAllocs()
			defer reportDaemonTime(b, v.Mount, "readdirplus")()
			for b.Loop() {
				f, err := os.Open(v.Path("src/pkg"))
				if err != nil {
					b.Fatal(err)
				}
				es, err := f.ReadDir(-1)
				f.Close()
				if err != nil || len(es) != 100 {
					b.Fatalf("%d entries, %v", len(es), err)
				}
				for _, e := range es {
					if _, err := e.Info(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// reportDaemonTime reports, when the returned function is called, the
// daemon's mean time per request of each named operation since
// reportDaemonTime was called.
func reportDaemonTime(b *testing.B, m *sievefs.Mount, ops ...string) func() {
	type mark struct {
		n uint64
		t time.Duration
	}
	start := make([]mark, len(ops))
	for i, op := range ops {
		start[i].n, start[i].t = m.RequestTime(op)
	}
	return func() {
		for i, op := range ops {
			n, t := m.RequestTime(op)
			if n > start[i].n {
				b.ReportMetric(float64(t-start[i].t)/float64(n-start[i].n), op+"-ns/req")
			}
		}
	}
}
