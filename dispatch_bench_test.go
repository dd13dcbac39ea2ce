package sievefs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sievefs/sievefs/internal/lower"
)

// BenchmarkDispatch measures the daemon's side of requests, without the
// kernel: the dispatcher's handlers called directly, as go-fuse calls
// them, over a lower tree in a temporary directory, without a policy and
// with bench/policy10.yaml (ten rules, none covering the paths used). It
// covers a lookup of a known name, a getattr, and a readdirplus of a
// 100-entry directory encoded into the reply buffer (ns per entry; SetBytes
// counts the reply's bytes). The same work on a real mount is
// BenchmarkFilterRules, where the round trip through the kernel dominates.
//
//	go test -run XXX -bench Dispatch .
func BenchmarkDispatch(b *testing.B) {
	low := b.TempDir()
	dir := filepath.Join(low, "src", "pkg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	const files = 100
	for i := range files {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.go", i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ten, err := os.ReadFile("bench/policy10.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for _, policy := range []string{"none", "rules=10"} {
		opts := Options{}
		if policy != "none" {
			opts.Rules = PolicyRules(b, "bench/policy10.yaml", ten)
		}
		opts.setDefaults()
		tree, err := lower.Open(low, lower.Options{RecheckAfter: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { tree.Close() })
		rules, err := newChain(opts.Rules)
		if err != nil {
			b.Fatal(err)
		}
		fs := newFileSystem(tree, opts, rules)
		caller := fuse.Caller{Owner: fuse.Owner{Uid: 1000, Gid: 1000}, Pid: 1}
		lookup := func(parent uint64, name string) uint64 {
			var out fuse.EntryOut
			if s := fs.Lookup(nil, &fuse.InHeader{NodeId: parent, Caller: caller}, name, &out); !s.Ok() {
				b.Fatalf("lookup %s: %v", name, s)
			}
			return out.NodeId
		}
		pkg := lookup(lookup(lower.RootID, "src"), "pkg")
		file := lookup(pkg, "f042.go")

		b.Run(policy+"/lookup", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lookup(pkg, "f042.go")
			}
		})
		b.Run(policy+"/getattr", func(b *testing.B) {
			b.ReportAllocs()
			in := &fuse.GetAttrIn{InHeader: fuse.InHeader{NodeId: file, Caller: caller}}
			for b.Loop() {
				var out fuse.AttrOut
				if s := fs.GetAttr(nil, in, &out); !s.Ok() {
					b.Fatal(s)
				}
			}
		})
		b.Run(policy+"/readdirplus", func(b *testing.B) {
			b.ReportAllocs()
			var open fuse.OpenOut
			if s := fs.OpenDir(nil, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: pkg, Caller: caller}}, &open); !s.Ok() {
				b.Fatal(s)
			}
			defer fs.ReleaseDir(&fuse.ReleaseIn{Fh: open.Fh})
			in := &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: pkg, Caller: caller}, Fh: open.Fh, Size: 64 << 10}
			buf := make([]byte, in.Size)
			entries := 0
			for b.Loop() {
				// A listing from the start: the handle seeks back to 0.
				in.Offset = 0
				out := fuse.NewDirEntryList(buf, 0)
				if s := fs.ReadDirPlus(nil, in, out); !s.Ok() {
					b.Fatal(s)
				}
				if entries == 0 {
					entries = countEntries(b, out.Bytes())
					b.SetBytes(int64(len(out.Bytes())))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(entries), "ns/entry")
		})
	}
}

// countEntries returns how many entries a READDIRPLUS reply holds besides
// . and .., checking that it is the whole 100-entry listing, each with a
// node.
func countEntries(b *testing.B, reply []byte) int {
	b.Helper()
	es, outs, err := fuse.ParseDirLookupEntries(reply)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for i, e := range es {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		if outs[i].NodeId == 0 {
			b.Fatalf("entry %q without a node", e.Name)
		}
		n++
	}
	if n != 100 {
		b.Fatalf("listed %d entries, want 100", n)
	}
	return n
}
