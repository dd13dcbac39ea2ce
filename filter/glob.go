package filter

import (
	"fmt"
	"path"
	"strings"
)

// Pattern is a glob over paths relative to the mount root. Its elements are
// separated by "/"; an element "**" matches zero or more path elements, any
// other element is a path.Match pattern for exactly one (so "*" never
// crosses a "/"). "secrets/**" matches secrets and everything beneath it;
// "**/.env" matches a .env anywhere. A trailing "/" means the same as a
// trailing "/**", as in gitignore and rsync: "archive/" matches archive and
// everything beneath it. Unlike gitignore's, it matches a path whatever its
// type, a file named archive as well as a directory: filters see paths, a
// node's type is not known before the lower tree is asked, and the lower
// tree may swap a directory for a file under the rule. No pattern matches
// the mount root.
type Pattern struct {
	src   string
	elems []string
	// literal[i] is set when elems[i] has no glob syntax: it is compared
	// as a string, which is much cheaper than path.Match.
	literal []bool
}

// ParsePattern parses a glob. It must be relative, without empty, "." or
// ".." elements (a single trailing "/" aside), and every element must be a
// valid path.Match pattern.
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, fmt.Errorf("empty glob")
	}
	if strings.HasPrefix(s, "/") {
		return Pattern{}, fmt.Errorf("glob %q: must be relative to the mount root (drop the leading /)", s)
	}
	elems := strings.Split(strings.TrimSuffix(s, "/"), "/")
	var out []string
	for _, e := range elems {
		switch {
		case e == "" || e == "." || e == "..":
			return Pattern{}, fmt.Errorf("glob %q: empty, . or .. element", s)
		case e == "**":
			if len(out) > 0 && out[len(out)-1] == "**" {
				continue // a/**/**/b is a/**/b
			}
		case strings.Contains(e, "**"):
			return Pattern{}, fmt.Errorf("glob %q: ** must be a whole element, as in a/**/b", s)
		default:
			if _, err := path.Match(e, ""); err != nil {
				return Pattern{}, fmt.Errorf("glob %q: bad element %q: %w", s, e, err)
			}
		}
		out = append(out, e)
	}
	if strings.HasSuffix(s, "/") && out[len(out)-1] != "**" {
		out = append(out, "**") // "dir/" is "dir/**"
	}
	lit := make([]bool, len(out))
	for i, e := range out {
		lit[i] = !strings.ContainsAny(e, `*?[\\`)
	}
	return Pattern{src: s, elems: out, literal: lit}, nil
}

// MustPattern is ParsePattern for patterns known to be valid; it panics
// otherwise.
func MustPattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the glob as written.
func (p Pattern) String() string { return p.src }

// Literal reports whether the glob names one path, without glob syntax:
// "archive" or "a/b", not "a/*", "a/**" or "a/". Such a glob matches a
// directory itself and nothing inside it.
func (p Pattern) Literal() bool {
	for _, lit := range p.literal {
		if !lit {
			return false
		}
	}
	return true
}

// Match reports whether the pattern matches p, a path relative to the mount
// root ("" for the root, which nothing matches).
func (p Pattern) Match(name string) bool {
	if name == "" {
		return false
	}
	if p.ByName() {
		// The common "**/name": only the last element counts.
		return p.matchElem(1, name[strings.LastIndexByte(name, '/')+1:])
	}
	return p.matchFrom(0, name, false)
}

// matchElem matches element i of the pattern against one path element.
func (p Pattern) matchElem(i int, elem string) bool {
	if p.literal[i] {
		return p.elems[i] == elem
	}
	ok, _ := path.Match(p.elems[i], elem)
	return ok
}

// MatchBelow reports whether the pattern could match a path strictly beneath
// the directory dir: whether moving dir elsewhere could carry something the
// pattern matches along with it.
func (p Pattern) MatchBelow(dir string) bool {
	return p.matchFrom(0, dir, true)
}

// ByName reports whether the pattern matches by last element alone
// ("**/name"): then where a directory is moved does not change which of the
// entries beneath it match.
func (p Pattern) ByName() bool {
	return len(p.elems) == 2 && p.elems[0] == "**"
}

// coversBelow reports whether whatever the pattern matches, it matches
// everything beneath too (it ends in **).
func (p Pattern) coversBelow() bool {
	return len(p.elems) > 0 && p.elems[len(p.elems)-1] == "**"
}

// matchFrom matches the pattern's elements from i on against the
// "/"-separated name. With below set it reports whether some strict
// descendant of name could match.
func (p Pattern) matchFrom(i int, name string, below bool) bool {
	for i < len(p.elems) {
		if p.elems[i] == "**" {
			if below || i == len(p.elems)-1 {
				return true
			}
			for {
				if name != "" && p.matchFrom(i+1, name, false) {
					return true
				}
				k := strings.IndexByte(name, '/')
				if k < 0 {
					return false
				}
				name = name[k+1:]
			}
		}
		if name == "" {
			return below
		}
		elem, tail, _ := strings.Cut(name, "/")
		if !p.matchElem(i, elem) {
			return false
		}
		i, name = i+1, tail
		if tail == "" && i < len(p.elems) && !below {
			// name is used up: only a trailing ** can still match.
			return i == len(p.elems)-1 && p.elems[i] == "**"
		}
	}
	return name == "" && !below
}

// Patterns is a set of globs; it matches what any of them matches.
type Patterns []Pattern

// ParsePatterns parses globs.
func ParsePatterns(globs []string) (Patterns, error) {
	ps := make(Patterns, 0, len(globs))
	for _, g := range globs {
		p, err := ParsePattern(g)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// Match reports whether any pattern matches name.
func (ps Patterns) Match(name string) bool {
	for _, p := range ps {
		if p.Match(name) {
			return true
		}
	}
	return false
}

// MatchBelow reports whether any pattern could match a path strictly
// beneath dir.
func (ps Patterns) MatchBelow(dir string) bool {
	for _, p := range ps {
		if p.MatchBelow(dir) {
			return true
		}
	}
	return false
}

// Escapes reports whether renaming from to to could carry something the
// patterns match out of their reach: the node itself, or for a directory
// anything beneath it (patterns that match by name alone excepted).
// Filters that restrict what the patterns match refuse such renames; EXDEV
// makes mv(1) fall back to copy and delete, which the filter then governs
// entry by entry.
func (ps Patterns) Escapes(from, to string, dir bool) bool {
	for _, p := range ps {
		if p.Match(from) && !p.Match(to) {
			return true
		}
		if dir && !p.ByName() && p.MatchBelow(from) && !(p.coversBelow() && p.Match(to)) {
			return true
		}
	}
	return false
}

// Strings returns the globs as written.
func (ps Patterns) Strings() []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.src
	}
	return out
}
