package sievefs_test

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// BenchmarkTransport measures what a request costs through each transport
// on a real mount: a stat of a file with caching off (--cache never), so
// that every stat reaches the daemon (a LOOKUP and a GETATTR). All
// transports run in one benchmark (uring where the kernel has it); dev and
// uring report their time per request as a ratio to go-fuse's (x-go-fuse:
// 1.10 is 10% slower).
//
//	go test -run XXX -bench Transport .
func BenchmarkTransport(b *testing.B) {
	perRequest := map[sievefs.Transport]float64{}
	for _, t := range []sievefs.Transport{sievefs.TransportGoFuse, sievefs.TransportDev, sievefs.TransportURing} {
		b.Run(string(t), func(b *testing.B) {
			if t == sievefs.TransportURing {
				fusetest.RequireURing(b)
			}
			v := fusetest.Mount(b, sievefs.Options{Transport: t, Cache: sievefs.CacheNever})
			fusetest.WriteFile(b, v.LowerPath("f"), []byte("x"))
			path := filepath.Join(v.Mnt, "f")
			requests := func() uint64 { return v.Mount.Requests("lookup") + v.Mount.Requests("getattr") }
			var st unix.Stat_t
			before := requests()
			b.ReportAllocs()
			for b.Loop() {
				if err := unix.Stat(path, &st); err != nil {
					b.Fatal(err)
				}
			}
			n := float64(requests() - before)
			if n == 0 {
				b.Fatal("no request reached the daemon")
			}
			perRequest[t] = float64(b.Elapsed().Nanoseconds()) / n
			b.ReportMetric(n/float64(b.N), "req/op")
			b.ReportMetric(perRequest[t], "ns/req")
			if base := perRequest[sievefs.TransportGoFuse]; t != sievefs.TransportGoFuse && base > 0 {
				b.ReportMetric(perRequest[t]/base, "x-go-fuse")
			}
		})
	}
}
