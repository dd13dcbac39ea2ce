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
	filter.PathScope
}

var (
	_ filter.PreFilter   = (*Filter)(nil)
	_ filter.Scoped      = (*Filter)(nil)
	_ filter.ScopedBelow = (*Filter)(nil)
	_ filter.OpScoped    = (*Filter)(nil)
)

// New returns a filter making paths read-only.
func New(paths filter.Patterns) *Filter { return &Filter{PathScope: filter.ScopeOf(paths)} }

// Kind returns "readonly".
func (f *Filter) Kind() string { return "readonly" }

// Sees returns the operations that can modify: the filter sees no other.
func (f *Filter) Sees() filter.OpSet { return filter.ModifyingOps }

// Pre refuses modifying operations under the paths.
func (f *Filter) Pre(r *filter.Request) error {
	if !r.Modifies() {
		return nil
	}
	if f.Covers(r.Path) {
		return syscall.EROFS
	}
	switch r.Op {
	case filter.OpLink:
		if f.Covers(r.NewPath) {
			return syscall.EROFS
		}
	case filter.OpRename:
		if f.Covers(r.NewPath) {
			return syscall.EROFS
		}
		// Out of the patterns' reach, or (a directory) into it: either
		// would change what the read-only paths hold.
		dir := r.Type == syscall.S_IFDIR
		if f.Paths().Escapes(r.Path, r.NewPath, dir) || f.Paths().Escapes(r.NewPath, r.Path, dir) {
			return syscall.EXDEV
		}
	}
	return nil
}
