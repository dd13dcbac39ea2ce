package filter

import (
	"slices"
	"strings"
	"testing"
)

func TestParsePatternErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"/",
		"/etc",
		"/secrets/**",
		"a//b",
		"//",
		"a//",
		".",
		"..",
		"a/../b",
		"a/./b",
		"../a",
		"a/..",
		"a**b",
		"**b",
		"a/**x/b",
		"***",
		"[",
		"a/[b",
		"x[]",
		"[a-]",
		`a\`,
		"a/*[",
	} {
		if p, err := ParsePattern(s); err == nil {
			t.Errorf("ParsePattern(%q) = %v, want an error", s, p.elems)
		}
	}
}

func TestParsePatternValid(t *testing.T) {
	for _, c := range []struct {
		in    string
		elems []string
	}{
		{"a", []string{"a"}},
		{"a/", []string{"a", "**"}},
		{"a/b/", []string{"a", "b", "**"}},
		{"a/**/", []string{"a", "**"}},
		{"**/", []string{"**"}},
		{"**/.git/", []string{"**", ".git", "**"}},
		{"*.d/", []string{"*.d", "**"}},
		{"a/b/c", []string{"a", "b", "c"}},
		{"**", []string{"**"}},
		{"**/**", []string{"**"}},
		{"a/**/**/b", []string{"a", "**", "b"}},
		{"*.txt", []string{"*.txt"}},
		{"[abc]?/[!x]", []string{"[abc]?", "[!x]"}},
		{`\*`, []string{`\*`}},
		{".env", []string{".env"}},
		{"...", []string{"..."}},
	} {
		p, err := ParsePattern(c.in)
		if err != nil {
			t.Errorf("ParsePattern(%q): %v", c.in, err)
			continue
		}
		if !slices.Equal(p.elems, c.elems) {
			t.Errorf("ParsePattern(%q) elements %q, want %q", c.in, p.elems, c.elems)
		}
		if p.String() != c.in {
			t.Errorf("ParsePattern(%q).String() = %q", c.in, p.String())
		}
	}
}

func TestMustPatternPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustPattern of a bad glob did not panic")
		}
	}()
	MustPattern("/abs")
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pat  string
		yes  []string
		none []string
	}{
		{"secrets/**",
			[]string{"secrets", "secrets/a", "secrets/a/b", "secrets/a/b/c/d"},
			[]string{"", "secretsx", "secretsx/a", "x/secrets", "x/secrets/a", "secret"}},
		{"**/.env",
			[]string{".env", "a/.env", "a/b/.env", "a/b/c/d/.env"},
			[]string{"", ".envx", "a/.envx", "a/.env/b", "x.env", "a/x.env"}},
		{"*.txt",
			[]string{"a.txt", ".txt", "a.b.txt"},
			[]string{"", "a/b.txt", "dir.txt/x", "a.txt.bak", "a.TXT"}},
		{"a/**/b",
			[]string{"a/b", "a/x/b", "a/x/y/b", "a/b/b"},
			[]string{"", "a", "b", "a/bx", "a/x/b/c", "x/a/b", "ab"}},
		{"a/*/c",
			[]string{"a/b/c", "a/x/c"},
			[]string{"a/c", "a/b/b/c", "a/b/c/d"}},
		{"a",
			[]string{"a"},
			[]string{"", "a/b", "b", "ab", "b/a"}},
		{"a/b",
			[]string{"a/b"},
			[]string{"a", "a/b/c", "a/bb", "x/a/b"}},
		{"**",
			[]string{"a", "a/b", ".x"},
			[]string{""}},
		{"**/x/**",
			[]string{"x", "x/y", "a/x", "a/b/x/c/d"},
			[]string{"", "a", "xa/b", "a/xb"}},
		{"a/**/b/**",
			[]string{"a/b", "a/b/c", "a/x/b", "a/x/y/b/z"},
			[]string{"a", "a/x", "b", "a/bc"}},
		{"[ab]?",
			[]string{"ax", "bb"},
			[]string{"a", "cx", "axx", "ax/y"}},
		{`\*`,
			[]string{"*"},
			[]string{"a", "**"}},
		// A trailing "/" is "/**": the path and everything beneath it,
		// whatever its type.
		{"a/",
			[]string{"a", "a/b", "a/b/c"},
			[]string{"", "ab", "ab/c", "b/a", "x/a/b"}},
		{"a/b/",
			[]string{"a/b", "a/b/c"},
			[]string{"a", "a/bc", "x/a/b"}},
		{"**/.git/",
			[]string{".git", ".git/config", "x/.git", "x/y/.git/objects/ab"},
			[]string{"", ".gitx", "x/.gitx/y", "x"}},
		{"*.d/",
			[]string{"conf.d", "conf.d/a", "conf.d/a/b"},
			[]string{"conf", "x/conf.d"}},
		// Escapes and classes are glob syntax, not literal text.
		{`a\b`,
			[]string{"ab"},
			[]string{`a\b`, "a"}},
		{"[*]",
			[]string{"*"},
			[]string{"[*]", "a"}},
		{"**/a?c",
			[]string{"abc", "x/a.c"},
			[]string{"a?x", "x/ac"}},
		{"**/lit.txt",
			[]string{"lit.txt", "d/lit.txt"},
			[]string{"lit.txtx", "d/xlit.txt", "lit.txt/d"}},
	} {
		p := MustPattern(c.pat)
		for _, n := range c.yes {
			if !p.Match(n) {
				t.Errorf("%q does not match %q", c.pat, n)
			}
		}
		for _, n := range c.none {
			if p.Match(n) {
				t.Errorf("%q matches %q", c.pat, n)
			}
		}
	}
}

func TestMatchBelow(t *testing.T) {
	for _, c := range []struct {
		pat  string
		dir  string
		want bool
	}{
		{"secrets/**", "", true},
		{"secrets/**", "secrets", true},
		{"secrets/**", "secrets/a", true},
		{"secrets/**", "other", false},
		{"secrets/**", "secretsx", false},
		{"a/b", "", true},
		{"a/b", "a", true},
		{"a/b", "a/b", false},
		{"a/b", "b", false},
		{"a", "a", false},
		{"a", "", true},
		{"a/b/c", "a", true},
		{"a/b/c", "a/b", true},
		{"a/b/c", "a/x", false},
		{"**/.env", "", true},
		{"**/.env", "any/where", true},
		{"*.txt", "dir", false},
		{"x/*.txt", "x", true},
		{"x/*.txt", "x/y", false},
		{"a/**/b", "a", true},
		{"a/**/b", "a/x/y", true},
		{"a/**/b", "c", false},
		{"*/b", "anything", true},
		{"*/b", "a/b", false},
		{"a/", "", true},
		{"a/", "a", true},
		{"a/", "a/b", true},
		{"a/", "b", false},
	} {
		if got := MustPattern(c.pat).MatchBelow(c.dir); got != c.want {
			t.Errorf("%q.MatchBelow(%q) = %v, want %v", c.pat, c.dir, got, c.want)
		}
	}
}

// TestMatchBelowAgreesWithMatch checks MatchBelow against Match over a small
// tree: whenever a pattern matches a path, it must report a match below
// every proper ancestor of the path.
func TestMatchBelowAgreesWithMatch(t *testing.T) {
	elems := []string{"a", "b", ".env", "x.txt"}
	var paths []string
	var grow func(prefix string, depth int)
	grow = func(prefix string, depth int) {
		if depth == 0 {
			return
		}
		for _, e := range elems {
			p := e
			if prefix != "" {
				p = prefix + "/" + e
			}
			paths = append(paths, p)
			grow(p, depth-1)
		}
	}
	grow("", 4)
	for _, g := range []string{"a", "a/b", "a/**", "a/**/b", "**/.env", "*.txt", "*/x.txt", "**/b/**", "b/*/a", "**", "a/", "**/b/"} {
		p := MustPattern(g)
		for _, path := range paths {
			if !p.Match(path) {
				continue
			}
			for dir := ""; ; {
				if !p.MatchBelow(dir) {
					t.Errorf("%q matches %q but not below its ancestor %q", g, path, dir)
				}
				rest := strings.TrimPrefix(strings.TrimPrefix(path, dir), "/")
				i := strings.IndexByte(rest, '/')
				if i < 0 {
					break
				}
				if dir != "" {
					dir += "/"
				}
				dir += rest[:i]
			}
		}
	}
}

func TestByName(t *testing.T) {
	for _, c := range []struct {
		pat  string
		want bool
	}{
		{"**/.env", true},
		{"**/*.key", true},
		{"**/**/.env", true}, // the same glob
		{".env", false},
		{"a/.env", false},
		{"**", false},
		{"**/x/**", false},
		{"a/**/b", false},
		{"secrets/**", false},
		{"**/.git/", false},
	} {
		if got := MustPattern(c.pat).ByName(); got != c.want {
			t.Errorf("%q.ByName() = %v, want %v", c.pat, got, c.want)
		}
	}
}

// TestSlashMeansDoubleStar: "dir/" matches what "dir/**" matches, on a
// small tree.
func TestSlashMeansDoubleStar(t *testing.T) {
	paths := []string{"a", "a/b", "a/b/c", "ab", "b", "b/a", "b/a/c", "a/a"}
	for _, g := range []string{"a", "a/b", "*", "**/a", "a/*"} {
		slash, stars := MustPattern(g+"/"), MustPattern(g+"/**")
		for _, x := range paths {
			if slash.Match(x) != stars.Match(x) || slash.MatchBelow(x) != stars.MatchBelow(x) {
				t.Errorf("%q and %q differ on %q", g+"/", g+"/**", x)
			}
		}
	}
}

func TestLiteral(t *testing.T) {
	for _, c := range []struct {
		pat  string
		want bool
	}{
		{"archive", true},
		{"a/b/c", true},
		{".env", true},
		{"archive/", false},
		{"archive/**", false},
		{"**/archive", false},
		{"a/*", false},
		{"a?", false},
		{"[a]", false},
		{`\a`, false},
	} {
		if got := MustPattern(c.pat).Literal(); got != c.want {
			t.Errorf("%q.Literal() = %v, want %v", c.pat, got, c.want)
		}
	}
}

func TestParsePatterns(t *testing.T) {
	ps, err := ParsePatterns([]string{"a/**", "**/.env"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ps.Strings(); !slices.Equal(got, []string{"a/**", "**/.env"}) {
		t.Errorf("Strings() = %q", got)
	}
	if !ps.Match("a/x") || !ps.Match("b/.env") || ps.Match("b/x") || ps.Match("") {
		t.Error("Patterns.Match does not match what any of its globs match")
	}
	if _, err := ParsePatterns([]string{"ok", "/bad"}); err == nil {
		t.Error("ParsePatterns with a bad glob succeeded")
	}
	var none Patterns
	if none.Match("a") || none.Escapes("a", "b", true) {
		t.Error("empty Patterns match")
	}
}

func TestEscapes(t *testing.T) {
	for _, c := range []struct {
		pats     []string
		from, to string
		dir      bool
		want     bool
	}{
		// Files.
		{[]string{"secrets/**"}, "secrets/a", "b", false, true},
		{[]string{"secrets/**"}, "secrets/a", "secrets/b", false, false},
		{[]string{"secrets/**"}, "secrets/a", "secrets/x/y", false, false},
		{[]string{"secrets/**"}, "b", "secrets/a", false, false}, // into
		{[]string{"secrets/**"}, "a", "b", false, false},
		{[]string{"*.key"}, "a.key", "a.txt", false, true},
		{[]string{"*.key"}, "a.key", "b.key", false, false},
		{[]string{"*.key"}, "a.key", "d/a.key", false, true},
		// Directories.
		{[]string{"secrets/**"}, "secrets", "public", true, true},
		{[]string{"secrets/**"}, "secrets/d", "public/d", true, true},
		{[]string{"secrets/**"}, "secrets/d", "secrets/e/d", true, false},
		{[]string{"secrets/**"}, "public/d", "secrets/d", true, false}, // into
		{[]string{"secrets/**"}, "public/d", "public/e", true, false},
		{[]string{"a/b/**"}, "a", "z", true, true},
		{[]string{"a/b/**"}, "a/b", "z", true, true},
		{[]string{"a/b/**"}, "z", "a", true, false}, // into the parent
		{[]string{"a/b/**"}, "y", "z", true, false},
		{[]string{"a/b"}, "a", "z", true, true},
		{[]string{"a/b"}, "a", "z", false, false}, // a file named a has nothing below
		{[]string{"a/b/c"}, "a/b", "a/x", true, true},
		{[]string{"x/*.txt"}, "x/d", "y/d", true, false},
		// "dir/" is "dir/**".
		{[]string{"archive/"}, "archive", "old", true, true},
		{[]string{"archive/"}, "archive/2020", "2020", true, true},
		{[]string{"archive/"}, "archive/a.tar", "a.tar", false, true},
		{[]string{"archive/"}, "archive/a", "archive/b", true, false},
		// By-name patterns move with the directory.
		{[]string{"**/.env"}, "proj", "other/proj", true, false},
		{[]string{"**/.env"}, "a/.env", "a/env", true, true},
		{[]string{"**/.env"}, "a/.env", "b/.env", true, false},
		{[]string{"**/.env"}, "a/.env", "a/env", false, true},
		{[]string{"**/*.key"}, "keys", "k", true, false},
		// Several patterns: any one escaping is enough.
		{[]string{"**/.env", "secrets/**"}, "secrets", "s", true, true},
		{[]string{"**/.env", "secrets/**"}, "proj", "p", true, false},
	} {
		ps, err := ParsePatterns(c.pats)
		if err != nil {
			t.Fatal(err)
		}
		if got := ps.Escapes(c.from, c.to, c.dir); got != c.want {
			t.Errorf("%q.Escapes(%q, %q, dir=%v) = %v, want %v", c.pats, c.from, c.to, c.dir, got, c.want)
		}
	}
}
