// Package rename is the filter that shows names with one suffix as another
// (".markdown" files as ".md").
package rename

import (
	"fmt"
	"strings"
	"syscall"

	"github.com/sievefs/sievefs/filter"
)

// Filter maps lower names ending in From to view names ending in To, both
// ways, for the view paths it matches: lookups, listings, creation, links
// and renames use the mapped names; symlink targets stay as they are.
//
// Collisions: the mapping must be one to one, so under the paths a lower
// name that already ends in To is not shown (it would collide with the
// mapped name of a From file), and a view name ending in From does not
// exist (ENOENT, also when creating it).
type Filter struct {
	filter.PathScope
	from, to string
}

var (
	_ filter.NameMapper  = (*Filter)(nil)
	_ filter.ScopedBelow = (*Filter)(nil)
)

// New returns a filter mapping suffix from to suffix to under paths. It
// refuses suffixes that are empty, "." or "..", that hold a "/" or a NUL
// (no name can: the mapped names would not exist), and a pair in which one
// suffix ends the other (the mapping would not be one to one).
func New(paths filter.Patterns, from, to string) (*Filter, error) {
	for _, s := range []string{from, to} {
		if s == "" || strings.ContainsAny(s, "/\x00") || s == "." || s == ".." {
			return nil, fmt.Errorf("rename suffix %q: want a non-empty name part without / or NUL", s)
		}
	}
	if from == to || strings.HasSuffix(from, to) || strings.HasSuffix(to, from) {
		return nil, fmt.Errorf("rename %q to %q: neither suffix may end the other", from, to)
	}
	return &Filter{PathScope: filter.ScopeOf(paths), from: from, to: to}, nil
}

// Kind returns "rename".
func (f *Filter) Kind() string { return "rename" }

// Suffixes returns the lower and the view suffix.
func (f *Filter) Suffixes() (from, to string) { return f.from, f.to }

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// LowerName maps a view name to its lower name.
func (f *Filter) LowerName(dir, name string) (string, error) {
	if stem, ok := strings.CutSuffix(name, f.to); ok && f.Covers(join(dir, name)) {
		return stem + f.from, nil
	}
	if stem, ok := strings.CutSuffix(name, f.from); ok && f.Covers(join(dir, stem+f.to)) {
		return "", syscall.ENOENT
	}
	return name, nil
}

// ViewName maps a lower name to its view name.
func (f *Filter) ViewName(dir, lower string) (string, bool) {
	if stem, ok := strings.CutSuffix(lower, f.from); ok {
		if view := stem + f.to; f.Covers(join(dir, view)) {
			return view, true
		}
	}
	if strings.HasSuffix(lower, f.to) && f.Covers(join(dir, lower)) {
		return "", false
	}
	return lower, true
}
