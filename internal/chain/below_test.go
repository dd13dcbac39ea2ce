package chain_test

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/deny"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/filter/readonly"
	"github.com/sievefs/sievefs/filter/redact"
	"github.com/sievefs/sievefs/filter/remap"
	"github.com/sievefs/sievefs/filter/rename"
	"github.com/sievefs/sievefs/internal/chain"
)

// everyPath is a filter that is not ScopedBelow: Below must keep it.
type everyPath struct{}

func (everyPath) Kind() string                                          { return "every" }
func (everyPath) Attr(r *filter.Request, p string, a *filter.Attr) bool { a.Nlink = 7; return true }

// belowRules is a chain with a rule of every built-in path-scoped kind,
// some with conditions, and one rule that acts everywhere.
func belowRules(t *testing.T) *chain.Chain {
	t.Helper()
	ps := func(globs ...string) filter.Patterns {
		p, err := filter.ParsePatterns(globs)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	id, mode := uint32(1000), uint32(0o600)
	ren, err := rename.New(ps("docs/**"), ".markdown", ".md")
	if err != nil {
		t.Fatal(err)
	}
	red, err := redact.New(ps("photos/**"), []string{"gps"})
	if err != nil {
		t.Fatal(err)
	}
	redDocs, err := redact.New(ps("docs/**"), []string{"gps"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := chain.New(
		filter.Rule{Filter: hide.New(ps("secrets/**", "**/.env"))},
		filter.Rule{Filter: hide.New(ps("private/*/key")), When: filter.Condition{Unless: &filter.Callers{Uids: []uint32{0}}}},
		filter.Rule{Filter: readonly.New(ps("archive/**"))},
		filter.Rule{Filter: deny.New([]filter.Op{filter.OpUnlink}, ps("records/**"), 0)},
		filter.Rule{Filter: remap.New(remap.Config{Paths: ps("shared/**"), Uid: &id, FileMode: &mode})},
		filter.Rule{Filter: ren},
		filter.Rule{Filter: red, When: filter.Condition{Only: &filter.Callers{Uids: []uint32{1000}}}},
		filter.Rule{Filter: redDocs},
		filter.Rule{Filter: everyPath{}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ruleNames(c *chain.Chain) []string {
	var out []string
	for _, r := range c.Rules() {
		out = append(out, r.Name)
	}
	return out
}

// TestBelowKeepsWhatMayAct checks which rules Below keeps for a directory:
// those whose paths may match beneath it, and every rule that cannot say.
func TestBelowKeepsWhatMayAct(t *testing.T) {
	c := belowRules(t)
	for _, tc := range []struct {
		dir  string
		want string
	}{
		{"", "[1:hide 2:hide 3:readonly 4:deny 5:remap 6:rename 7:redact 8:redact 9:every]"},
		{"src/pkg", "[1:hide 9:every]"},
		{"secrets", "[1:hide 9:every]"},
		{"private", "[1:hide 2:hide 9:every]"},
		{"private/alice", "[1:hide 2:hide 9:every]"},
		{"private/alice/key", "[1:hide 9:every]"},
		{"shared/x", "[1:hide 5:remap 9:every]"},
		// Data rules are kept all or none (their masks must not move).
		{"docs", "[1:hide 6:rename 7:redact 8:redact 9:every]"},
		{"photos/2026", "[1:hide 7:redact 8:redact 9:every]"},
		{"archive", "[1:hide 3:readonly 9:every]"},
		{"records/old", "[1:hide 4:deny 9:every]"},
	} {
		if got := fmt.Sprint(ruleNames(c.Below(tc.dir))); got != tc.want {
			t.Errorf("Below(%q) = %s, want %s", tc.dir, got, tc.want)
		}
	}
	if c.Below("") != c {
		t.Error("Below of the root left nothing out but is a new chain")
	}
}

// TestBelowAnswersAsTheChain checks that for the entries of a directory,
// the chain Below returns answers every per-path question as the whole
// chain does, for callers the conditions let through and those they do not.
func TestBelowAnswersAsTheChain(t *testing.T) {
	c := belowRules(t)
	dirs := []string{"", "src", "src/pkg", "secrets", "secrets/deep", "private", "private/alice",
		"archive", "records", "shared", "shared/sub", "docs", "docs/guide", "photos", "photos/2026", "x/docs"}
	names := []string{"a.go", ".env", "key", "readme.markdown", "readme.md", "img.jpg", "docs", "secrets"}
	callers := []filter.Caller{{Uid: 0}, {Uid: 1000, Gid: 1000}, {Uid: 1001, Gid: 1001}}
	for _, dir := range dirs {
		b := c.Below(dir)
		for _, name := range names {
			path := name
			if dir != "" {
				path = dir + "/" + name
			}
			for _, caller := range callers {
				r := filter.Request{Op: filter.OpLookup, Caller: caller, Path: path, Type: syscall.S_IFREG}
				where := fmt.Sprintf("dir %q name %q uid %d", dir, name, caller.Uid)
				if got, want := b.Pre(&r), c.Pre(&r); got != want {
					t.Errorf("%s: Pre %v, want %v", where, got, want)
				}
				unlink := r
				unlink.Op = filter.OpUnlink
				if got, want := b.Pre(&unlink), c.Pre(&unlink); got != want {
					t.Errorf("%s: Pre(unlink) %v, want %v", where, got, want)
				}
				e := filter.DirEntry{Name: name, Path: path}
				if got, want := b.Keep(&r, &e), c.Keep(&r, &e); got != want {
					t.Errorf("%s: Keep %v, want %v", where, got, want)
				}
				gv, gok := b.ViewName(dir, name)
				wv, wok := c.ViewName(dir, name)
				if gv != wv || gok != wok {
					t.Errorf("%s: ViewName %q %v, want %q %v", where, gv, gok, wv, wok)
				}
				gl, gerr := b.LowerName(dir, name)
				wl, werr := c.LowerName(dir, name)
				if gl != wl || gerr != werr {
					t.Errorf("%s: LowerName %q %v, want %q %v", where, gl, gerr, wl, werr)
				}
				ga := filter.Attr{Mode: syscall.S_IFREG | 0o644, Uid: 5}
				wa := ga
				b.Attr(&r, path, &ga)
				c.Attr(&r, path, &wa)
				if ga != wa {
					t.Errorf("%s: Attr %+v, want %+v", where, ga, wa)
				}
				if got, want := b.DependsOnCaller(path), c.DependsOnCaller(path); got != want {
					t.Errorf("%s: DependsOnCaller %v, want %v", where, got, want)
				}
				if got, want := b.MayClaim(caller, path), c.MayClaim(caller, path); got != want {
					t.Errorf("%s: MayClaim %v, want %v", where, got, want)
				}
				// Node IDs carry these masks: they must name the same rules.
				if got, want := b.Claims(&r), c.Claims(&r); got != want {
					t.Errorf("%s: Claims %#x, want %#x", where, got, want)
				}
			}
		}
	}
}

// TestBelowSharesCounts checks that decisions made through a chain from
// Below are counted for the rules of the chain it came from.
func TestBelowSharesCounts(t *testing.T) {
	c := belowRules(t)
	b := c.Below("src")
	r := filter.Request{Op: filter.OpLookup, Path: "src/.env"}
	if err := b.Pre(&r); err != syscall.ENOENT {
		t.Fatalf("Pre of a hidden name: %v, want ENOENT", err)
	}
	if got := c.Stats()[0].Decisions[filter.DecisionError]; got != 1 {
		t.Errorf("rule 1:hide counted %d errors on the chain it came from, want 1", got)
	}
}
