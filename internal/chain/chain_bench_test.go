package chain_test

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/deny"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/filter/readonly"
	"github.com/sievefs/sievefs/filter/remap"
	"github.com/sievefs/sievefs/filter/rename"
	"github.com/sievefs/sievefs/internal/chain"
)

// benchRules returns n rules (0, 1 or 10) of the kinds a policy has, none
// of which matches the paths the benchmarks use, as in bench/policy10.yaml.
func benchRules(b *testing.B, n int) *chain.Chain {
	ps := func(globs ...string) filter.Patterns {
		p, err := filter.ParsePatterns(globs)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	id := uint32(1000)
	mode := uint32(0o640)
	ren, err := rename.New(ps("no-such-docs/**"), ".markdown", ".md")
	if err != nil {
		b.Fatal(err)
	}
	all := []filter.Rule{
		{Filter: hide.New(ps("no-such-secrets/**", "**/.no-such-env"))},
		{Filter: hide.New(ps("no-such-private/**")), When: filter.Condition{Unless: &filter.Callers{Uids: []uint32{0}}}},
		{Filter: readonly.New(ps("no-such-archive/**"))},
		{Filter: readonly.New(ps("no-such-frozen/**", "no-such-release/**"))},
		{Filter: deny.New([]filter.Op{filter.OpUnlink, filter.OpRmdir, filter.OpRename}, ps("no-such-records/**"), 0)},
		{Filter: deny.New([]filter.Op{filter.OpCreate}, ps("no-such-inbox/**"), syscall.EPERM)},
		{Filter: remap.New(remap.Config{Paths: ps("no-such-shared/**"), Uid: &id, Gid: &id, FileMode: &mode})},
		{Filter: ren},
		{Filter: hide.New(ps("**/no-such-name"))},
		{Filter: readonly.New(ps("no-such-vault/**"))},
	}
	c, err := chain.New(all[:n]...)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkChain measures what the dispatcher asks of the chain for one
// lookup (pre-filters, name mapping, caller dependence, attributes) and one
// listed directory entry, with 0, 1 and 10 rules.
func BenchmarkChain(b *testing.B) {
	for _, n := range []int{0, 1, 10} {
		c := benchRules(b, n)
		b.Run(map[int]string{0: "rules=0", 1: "rules=1", 10: "rules=10"}[n], func(b *testing.B) {
			b.ReportAllocs()
			caller := filter.Caller{Uid: 1000, Gid: 1000, Pid: 1}
			for b.Loop() {
				r := filter.Request{Op: filter.OpLookup, Caller: caller, Path: "src/pkg/sub/file.go"}
				if _, err := c.LowerName("src/pkg/sub", "file.go"); err != nil {
					b.Fatal(err)
				}
				if err := c.Pre(&r); err != nil {
					b.Fatal(err)
				}
				_ = c.DependsOnCaller(r.Path)
				a := filter.Attr{Mode: syscall.S_IFREG | 0o644}
				c.Attr(&r, r.Path, &a)
				e := filter.DirEntry{Name: "file.go", Path: r.Path}
				if _, ok := c.ViewName("src/pkg/sub", "file.go"); !ok || !c.Keep(&r, &e) {
					b.Fatal("entry dropped")
				}
			}
		})
	}
}

// BenchmarkChainEntry measures what a listing asks of the chain for each
// entry of a directory none of the rules cover (view name, keep, data
// claim, attributes, caller dependence), with the mount's whole chain and
// with the chain of the rules that may act beneath the directory (Below),
// which the listing uses.
func BenchmarkChainEntry(b *testing.B) {
	const dir, name = "src/pkg/sub", "file.go"
	for _, n := range []int{1, 10} {
		c := benchRules(b, n)
		for _, v := range []struct {
			name  string
			chain *chain.Chain
		}{{"whole", c}, {"below", c.Below(dir)}} {
			b.Run(fmt.Sprintf("rules=%d/%s", n, v.name), func(b *testing.B) {
				b.ReportAllocs()
				c := v.chain
				r := filter.Request{Op: filter.OpReaddirplus, Caller: filter.Caller{Uid: 1000, Gid: 1000, Pid: 1}, Path: dir}
				path := dir + "/" + name
				for b.Loop() {
					view, ok := c.ViewName(dir, name)
					e := filter.DirEntry{Name: view, Path: path}
					if !ok || !c.Keep(&r, &e) {
						b.Fatal("entry dropped")
					}
					_ = c.MayClaim(r.Caller, path)
					a := filter.Attr{Mode: syscall.S_IFREG | 0o644}
					if c.HasAttr() {
						c.Attr(&r, path, &a)
					}
					_ = c.DependsOnCaller(path)
				}
			})
		}
	}
}
