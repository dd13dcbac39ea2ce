package rename

import (
	"strings"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/chain"
)

func newFilter(t *testing.T, from, to string, globs ...string) *Filter {
	t.Helper()
	ps, err := filter.ParsePatterns(globs)
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(ps, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestNewErrors(t *testing.T) {
	ps := filter.Patterns{filter.MustPattern("**")}
	for _, c := range [][2]string{
		{"", ".md"},
		{".markdown", ""},
		{"a/b", ".md"},
		{".markdown", "/"},
		{".", ".md"},
		{".markdown", ".."},
		{".md\x00", ".txt"}, // no name holds a NUL
		{".md", "\x00"},
		{".md", ".md"},
		{".tar.gz", ".gz"}, // from ends with to
		{".gz", ".tar.gz"}, // to ends with from
	} {
		if _, err := New(ps, c[0], c[1]); err == nil {
			t.Errorf("New(%q, %q) succeeded", c[0], c[1])
		}
	}
	f, err := New(ps, ".markdown", ".md")
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind() != "rename" {
		t.Errorf("Kind() = %q", f.Kind())
	}
	if from, to := f.Suffixes(); from != ".markdown" || to != ".md" {
		t.Errorf("Suffixes() = %q, %q", from, to)
	}
	if got := f.Paths().Strings(); len(got) != 1 || got[0] != "**" {
		t.Errorf("Paths() = %q", got)
	}
}

func TestLowerName(t *testing.T) {
	f := newFilter(t, ".markdown", ".md", "docs/**")
	for _, tc := range []struct {
		dir, name, lower string
		err              error
	}{
		{"docs", "a.md", "a.markdown", nil},
		{"docs/x/y", "a.md", "a.markdown", nil},
		{"docs", ".md", ".markdown", nil},
		{"docs", "a.md.md", "a.md.markdown", nil},
		{"docs", "a.txt", "a.txt", nil},
		{"docs", "a.mdx", "a.mdx", nil},
		{"", "docs.md", "docs.md", nil}, // "docs.md" is not under docs/
		{"", "docs", "docs", nil},
		{"other", "a.md", "a.md", nil},
		{"other", "a.markdown", "a.markdown", nil},
		// The lower suffix does not exist in the view where it is mapped.
		{"docs", "a.markdown", "", syscall.ENOENT},
		{"docs/x", ".markdown", "", syscall.ENOENT},
	} {
		lower, err := f.LowerName(tc.dir, tc.name)
		if lower != tc.lower || err != tc.err {
			t.Errorf("LowerName(%q, %q) = %q, %v; want %q, %v", tc.dir, tc.name, lower, err, tc.lower, tc.err)
		}
	}
}

func TestViewName(t *testing.T) {
	f := newFilter(t, ".markdown", ".md", "docs/**")
	for _, tc := range []struct {
		dir, lower, view string
		ok               bool
	}{
		{"docs", "a.markdown", "a.md", true},
		{"docs/x", ".markdown", ".md", true},
		{"docs", "a.txt", "a.txt", true},
		{"other", "a.markdown", "a.markdown", true},
		{"other", "a.md", "a.md", true},
		// A lower name already ending in the view suffix would collide with
		// the mapped name of a .markdown file: not shown.
		{"docs", "a.md", "", false},
		{"docs/x", ".md", "", false},
	} {
		view, ok := f.ViewName(tc.dir, tc.lower)
		if view != tc.view || ok != tc.ok {
			t.Errorf("ViewName(%q, %q) = %q, %v; want %q, %v", tc.dir, tc.lower, view, ok, tc.view, tc.ok)
		}
	}
}

// names are the view and lower names the bijection is checked over.
var names = []string{
	"a", "a.md", "a.markdown", ".md", ".markdown", "a.md.md", "a.md.markdown", "a.markdown.md",
	"a.markdown.markdown", "md", "markdown", "a.mdx", "a.MD", "docs", "docs.md", "docs.markdown",
	"README.md", "x.txt", "notes.md.txt",
}

var dirs = []string{"", "docs", "docs/sub", "other", "docs.md", "x/docs"}

// TestBijection checks that the filter is one to one on what it shows:
// every view name the filter accepts maps to a lower name that maps back to
// it, and every lower name it shows maps to a view name that maps back to
// it, for globs that depend on the directory, on the name and on both.
func TestBijection(t *testing.T) {
	for _, globs := range [][]string{
		{"**"},
		{"docs/**"},
		{"**/*.md"},
		{"**/*.markdown"},
		{"docs/*.md"},
		{"*"},
		{"**/a*"},
		{"docs/**", "**/README.md"},
	} {
		f := newFilter(t, ".markdown", ".md", globs...)
		for _, dir := range dirs {
			views := map[string]string{} // lower name → the view name that maps to it
			for _, name := range names {
				lower, err := f.LowerName(dir, name)
				if err != nil {
					if err != syscall.ENOENT {
						t.Errorf("%q: LowerName(%q, %q): %v", globs, dir, name, err)
					}
					continue
				}
				if other, dup := views[lower]; dup {
					t.Errorf("%q: view names %q and %q in %q both map to lower %q", globs, other, name, dir, lower)
				}
				views[lower] = name
				if back, ok := f.ViewName(dir, lower); !ok || back != name {
					t.Errorf("%q: ViewName(%q, LowerName(%q) = %q) = %q, %v", globs, dir, name, lower, back, ok)
				}
			}
			for _, lower := range names {
				view, ok := f.ViewName(dir, lower)
				if !ok {
					continue
				}
				if back, err := f.LowerName(dir, view); err != nil || back != lower {
					t.Errorf("%q: lower %q in %q is listed as %q, which looks up as %q, %v", globs, lower, dir, view, back, err)
				}
			}
		}
	}
}

// TestInChain checks the filter through a chain, with the view names of
// the whole path.
func TestInChain(t *testing.T) {
	c, err := chain.New(filter.Rule{Filter: newFilter(t, ".markdown", ".md", "**")})
	if err != nil {
		t.Fatal(err)
	}
	if lower, err := c.LowerName("d", "x.md"); lower != "x.markdown" || err != nil {
		t.Errorf("LowerName = %q, %v", lower, err)
	}
	if view, ok := c.ViewName("d", "x.markdown"); view != "x.md" || !ok {
		t.Errorf("ViewName = %q, %v", view, ok)
	}
	if _, ok := c.ViewName("d", "x.md"); ok {
		t.Error("a colliding lower name is shown")
	}
	if _, err := c.LowerName("d", "x.markdown"); err != syscall.ENOENT {
		t.Errorf("LowerName of a lower-suffixed view name: %v", err)
	}
	st := c.Stats()[0].Decisions
	if st[filter.DecisionRename] != 1 || st[filter.DecisionDrop] != 1 || st[filter.DecisionError] != 1 {
		t.Errorf("stats %v", st)
	}
	if strings.Contains(c.Rules()[0].Name, "rename") == false {
		t.Errorf("rule name %q", c.Rules()[0].Name)
	}
}
