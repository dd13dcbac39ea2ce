package filter

import (
	"path"
	"strings"
	"testing"
)

// FuzzGlob parses an arbitrary glob and matches it against arbitrary paths.
// ParsePattern must never panic and must accept exactly the globs its doc
// allows; Match must agree with refMatch, a direct reading of the glob
// syntax; MatchBelow must be sound (a pattern that matches a path matches
// below each of its ancestors); and Escapes must report every rename that
// takes a matched node, or for a directory a matched path beneath it, out
// of the patterns' reach, and for a file nothing else.
func FuzzGlob(f *testing.F) {
	for _, s := range [][5]string{
		// pattern, second pattern, path, a path beneath it, rename target
		{"secrets/**", "**/.env", "secrets", "a/.env", "public"},
		{"**/.env", "*.key", "a/b", ".env", "c"},
		{"*.txt", "", "a.txt", "x", "b.txt"},
		{"a/**/b", "a/*/c", "a/x", "y/b", "a/x/z"},
		{"a/**/b/**", "**/x/**", "a/b", "c", "b"},
		{"[ab]?", `\*`, "ax", "y", "*"},
		{"a/", "a//b", "a", "b", "b"},
		{`a\b`, "[*]", "ab", "c", `a\b`},
		{"**/a?c", "**/lit.txt", "x/abc", "lit.txt", "y"},
		{"x/*.txt", "*/b", "x", "y.txt", "y"},
		{"**", "**/**", "a", "b", "c"},
		{"a/b/c", "/abs", "a/b", "c", "a/x"},
		{"[", "a**", "..", "./b", "//"},
		{"[a-]", "[!x]", "-", "a", "x"},
		{"archive/", "**/.git/", "archive", "x/.git/config", "old"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	f.Fuzz(func(t *testing.T, glob, glob2, name, sub, to string) {
		if len(glob)+len(glob2)+len(name)+len(sub)+len(to) > 512 {
			return // long inputs only slow the exponential reference down
		}
		p, err := ParsePattern(glob)
		if want := validGlob(glob); (err == nil) != want {
			t.Fatalf("ParsePattern(%q): error %v, want valid %v", glob, err, want)
		}
		if err != nil {
			if _, err := ParsePatterns([]string{"a", glob}); err == nil {
				t.Fatalf("ParsePatterns accepts %q", glob)
			}
			return
		}
		if p.String() != glob {
			t.Errorf("String() = %q, want %q", p.String(), glob)
		}
		name, sub, to = cleanPath(name), cleanPath(sub), cleanPath(to)
		beneath := joinPath(name, sub)
		for _, x := range []string{name, sub, to, beneath, joinPath(to, sub)} {
			if got, want := p.Match(x), refMatch(glob, x); got != want {
				t.Errorf("%q.Match(%q) = %v, the reference says %v", glob, x, got, want)
			}
		}
		checkBelow(t, glob, p, beneath)
		checkEscapes(t, glob, Patterns{p}, name, to, sub)
		if p2, err := ParsePattern(glob2); err == nil {
			ps := Patterns{p, p2}
			for _, x := range []string{name, beneath} {
				if ps.Match(x) != (p.Match(x) || p2.Match(x)) || ps.MatchBelow(x) != (p.MatchBelow(x) || p2.MatchBelow(x)) {
					t.Errorf("%q: Match or MatchBelow of %q is not that of any one pattern", ps.Strings(), x)
				}
			}
			checkEscapes(t, glob+" "+glob2, ps, name, to, sub)
		}
	})
}

// validGlob says whether ParsePattern must accept s, as its doc says: not
// empty, relative, with no empty, "." or ".." element (a single trailing
// "/" aside), "**" only as a whole element, and every other element a
// valid path.Match pattern.
func validGlob(s string) bool {
	if s == "" || strings.HasPrefix(s, "/") {
		return false
	}
	for _, e := range strings.Split(strings.TrimSuffix(s, "/"), "/") {
		if e == "" || e == "." || e == ".." || e != "**" && strings.Contains(e, "**") {
			return false
		}
		if _, err := path.Match(e, ""); err != nil {
			return false
		}
	}
	return true
}

// refMatch is the reference matcher: the glob's elements against the
// path's, "**" standing for zero or more elements, any other element
// matching one element by path.Match, a trailing "/" standing for "/**".
// The mount root ("") matches nothing.
func refMatch(glob, name string) bool {
	if name == "" {
		return false
	}
	if strings.HasSuffix(glob, "/") {
		glob += "**"
	}
	return refMatchElems(strings.Split(glob, "/"), strings.Split(name, "/"))
}

func refMatchElems(glob, name []string) bool {
	if len(glob) == 0 {
		return len(name) == 0
	}
	if glob[0] == "**" {
		for k := 0; k <= len(name); k++ {
			if refMatchElems(glob[1:], name[k:]) {
				return true
			}
		}
		return false
	}
	if len(name) == 0 {
		return false
	}
	ok, _ := path.Match(glob[0], name[0])
	return ok && refMatchElems(glob[1:], name[1:])
}

// checkBelow checks that MatchBelow is sound: when p matches the path x,
// it must report a possible match below every proper ancestor of x, the
// mount root included.
func checkBelow(t *testing.T, glob string, p Pattern, x string) {
	t.Helper()
	if !p.Match(x) {
		return
	}
	elems := strings.Split(x, "/")
	for i := range elems {
		dir := strings.Join(elems[:i], "/")
		if !p.MatchBelow(dir) {
			t.Errorf("%q matches %q but MatchBelow(%q) is false", glob, x, dir)
		}
	}
}

// checkEscapes checks what Escapes promises for a rename of from to to:
// a node that a pattern matches at from and not at to escapes, file or
// directory; a directory escapes when a path beneath it (from/sub) is
// matched and its new path (to/sub) is not; a file escapes only in the
// first case.
func checkEscapes(t *testing.T, what string, ps Patterns, from, to, sub string) {
	t.Helper()
	if from == "" || to == "" {
		return // the mount root is not renamed
	}
	escapesFile := false
	for _, p := range ps {
		escapesFile = escapesFile || p.Match(from) && !p.Match(to)
	}
	if got := ps.Escapes(from, to, false); got != escapesFile {
		t.Errorf("%s: Escapes(%q, %q, file) = %v, want %v", what, from, to, got, escapesFile)
	}
	if escapesFile && !ps.Escapes(from, to, true) {
		t.Errorf("%s: Escapes(%q, %q, dir) is false, but the directory itself is carried out", what, from, to)
	}
	if sub == "" {
		return
	}
	for _, p := range ps {
		if p.Match(joinPath(from, sub)) && !p.Match(joinPath(to, sub)) && !ps.Escapes(from, to, true) {
			t.Errorf("%s: Escapes(%q, %q, dir) is false, but %q is carried out to %q", what, from, to, joinPath(from, sub), joinPath(to, sub))
		}
	}
}

// cleanPath makes s a path as filters see it: relative to the mount root,
// without empty, "." or ".." elements ("" is the root).
func cleanPath(s string) string {
	var elems []string
	for _, e := range strings.Split(s, "/") {
		if e != "" && e != "." && e != ".." {
			elems = append(elems, e)
		}
	}
	return strings.Join(elems, "/")
}

// joinPath joins two such paths.
func joinPath(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "/" + b
}
