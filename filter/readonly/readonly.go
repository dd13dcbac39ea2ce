// Package readonly is the filter that makes paths read-only.
package readonly

import (
	"syscall"

	"github.com/sievefs/sievefs/filter"
)

// Filter fails every modifying operation on or onto the paths it matches
// with EROFS: writes by open flags, setattr, xattr changes, creation,
// removal, links from or to them and renames into or out of them. Reads
// are untouched (passthrough). Directories whose subtree may hold
// read-only paths cannot be renamed out of the patterns' reach, nor into it
// (EXDEV; mv(1) then copies entry by entry, which the filter governs).
type Filter struct {
	paths filter.Patterns
}

var (
	_ filter.PreFilter   = (*Filter)(nil)
	_ filter.Scoped      = (*Filter)(nil)
	_ filter.ScopedBelow = (*Filter)(nil)
	_ filter.OpScoped    = (*Filter)(nil)
)

// New returns a filter making paths read-only.
func New(paths filter.Patterns) *Filter { return &Filter{paths: paths} }

// Kind returns "readonly".
func (f *Filter) Kind() string { return "readonly" }

// Paths returns the read-only globs.
func (f *Filter) Paths() filter.Patterns { return f.paths }

// Covers reports whether path is read-only.
func (f *Filter) Covers(path string) bool { return f.paths.Match(path) }

// CoversBelow reports whether something beneath dir may be read-only.
func (f *Filter) CoversBelow(dir string) bool { return f.paths.MatchBelow(dir) }

// Sees returns the operations that can modify: the filter sees no other.
func (f *Filter) Sees() filter.OpSet { return filter.ModifyingOps }

// Pre refuses modifying operations under the paths.
func (f *Filter) Pre(r *filter.Request) error {
	if !r.Modifies() {
		return nil
	}
	if f.paths.Match(r.Path) {
		return syscall.EROFS
	}
	switch r.Op {
	case filter.OpLink:
		if f.paths.Match(r.NewPath) {
			return syscall.EROFS
		}
	case filter.OpRename:
		if f.paths.Match(r.NewPath) {
			return syscall.EROFS
		}
		// Out of the patterns' reach, or (a directory) into it: either
		// would change what the read-only paths hold.
		dir := r.Type == syscall.S_IFDIR
		if f.paths.Escapes(r.Path, r.NewPath, dir) || f.paths.Escapes(r.NewPath, r.Path, dir) {
			return syscall.EXDEV
		}
	}
	return nil
}
