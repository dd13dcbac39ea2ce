package rename

import (
	"strings"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
)

// FuzzRename makes a filter of arbitrary suffixes and globs and maps
// arbitrary names in an arbitrary directory both ways. New must refuse
// exactly the suffixes it documents; a filter it makes must be a bijection
// on the names it shows: every view name LowerName accepts is shown again
// under that name, every lower name ViewName shows looks up as itself, no
// two names map to one, and every name returned is a valid name.
func FuzzRename(f *testing.F) {
	f.Add(".markdown", ".md", "docs/**", "docs", "a", "b.md")
	f.Add(".markdown", ".md", "**", "", "a.md.markdown", "a.markdown.md")
	f.Add(".markdown", ".md", "**/*.md", "x/y", "README", ".md")
	f.Add(".markdown", ".md", "**/*.markdown", "docs", "a", "a.md")
	f.Add(".markdown", ".md", "docs/*.md\n**/README.md", "docs", "README", "x")
	f.Add(".tar.gz", ".gz", "**", "", "a", "b")
	f.Add("a", "b", "*", "", "a", "b")
	f.Add(".md", "md", "d", "", "x", "y")
	f.Add("\x00", ".md", "**", "", "a", "b")
	f.Add("..", ".", "**", "", "a", "b")
	f.Add(".x", ".y", "**/a*", "d/e", "a", "ab.x.y")
	f.Fuzz(func(t *testing.T, from, to, globs, dir, n1, n2 string) {
		paths := fuzzPatterns(globs)
		fl, err := New(paths, from, to)
		if refused := refusedSuffixes(from, to); refused != (err != nil) {
			t.Fatalf("New(%q, %q): %v; want refused %v", from, to, err, refused)
		}
		if err != nil {
			return
		}
		dir = cleanDir(dir)
		var cands []string
		for _, base := range []string{n1, n2, ""} {
			for _, name := range []string{base, base + from, base + to, base + to + from, base + from + to} {
				if validName(name) {
					cands = append(cands, name)
				}
			}
		}
		checkBijection(t, fl, dir, cands)
	})
}

// refusedSuffixes says whether New must refuse the suffixes: empty, ".",
// "..", with a "/" or a NUL (no name holds one), the same, or one ending
// the other.
func refusedSuffixes(from, to string) bool {
	for _, s := range []string{from, to} {
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
			return true
		}
	}
	return strings.HasSuffix(from, to) || strings.HasSuffix(to, from)
}

// fuzzPatterns parses the newline-separated globs, leaving out those that
// do not parse; with none left it is "**".
func fuzzPatterns(globs string) filter.Patterns {
	var ps filter.Patterns
	for _, g := range strings.Split(globs, "\n") {
		if p, err := filter.ParsePattern(g); err == nil {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		ps = filter.Patterns{filter.MustPattern("**")}
	}
	return ps
}

// cleanDir makes s a view directory path as filters see it: relative,
// without empty, "." or ".." elements or NULs ("" is the root).
func cleanDir(s string) string {
	var elems []string
	for _, e := range strings.Split(strings.ReplaceAll(s, "\x00", ""), "/") {
		if e != "" && e != "." && e != ".." {
			elems = append(elems, e)
		}
	}
	return strings.Join(elems, "/")
}

// validName reports whether s can name a directory entry.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// checkBijection checks the filter on the names in the directory dir, each
// taken as a view name and as a lower name.
func checkBijection(t *testing.T, f *Filter, dir string, names []string) {
	t.Helper()
	viewOf := map[string]string{}  // lower → the view name mapped to it
	lowerOf := map[string]string{} // view → the lower name shown as it
	for _, name := range names {
		lower, err := f.LowerName(dir, name)
		switch {
		case err == syscall.ENOENT:
		case err != nil:
			t.Errorf("LowerName(%q, %q): %v, want nil or ENOENT", dir, name, err)
		case !validName(lower):
			t.Errorf("LowerName(%q, %q) = %q, not a name", dir, name, lower)
		default:
			if v, dup := viewOf[lower]; dup && v != name {
				t.Errorf("view names %q and %q in %q both map to lower %q", v, name, dir, lower)
			}
			viewOf[lower] = name
			if back, ok := f.ViewName(dir, lower); !ok || back != name {
				t.Errorf("ViewName(%q, LowerName(%q) = %q) = %q, %v; want %q, true", dir, name, lower, back, ok, name)
			}
		}
		view, ok := f.ViewName(dir, name)
		if !ok {
			continue
		}
		if !validName(view) {
			t.Errorf("ViewName(%q, %q) = %q, not a name", dir, name, view)
			continue
		}
		if l, dup := lowerOf[view]; dup && l != name {
			t.Errorf("lower names %q and %q in %q are both shown as %q", l, name, dir, view)
		}
		lowerOf[view] = name
		if back, err := f.LowerName(dir, view); err != nil || back != name {
			t.Errorf("LowerName(%q, ViewName(%q) = %q) = %q, %v; want %q, nil", dir, name, view, back, err, name)
		}
	}
}
