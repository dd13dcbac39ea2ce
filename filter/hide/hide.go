// Package hide is the filter that makes paths absent from the view.
package hide

import (
	"syscall"

	"github.com/sievefs/sievefs/filter"
)

// Filter hides the paths it matches: they are absent from lookups and
// listings, cannot be created, linked or renamed onto, and every operation
// on a node the kernel still knows under a hidden path fails with ENOENT.
// Directories whose subtree may hold hidden paths cannot be renamed out of
// the patterns' reach (EXDEV: mv(1) then copies what is visible). A file
// hard-linked from a visible path stays reachable there.
type Filter struct {
	filter.PathScope
}

var (
	_ filter.PreFilter   = (*Filter)(nil)
	_ filter.DirFilter   = (*Filter)(nil)
	_ filter.Scoped      = (*Filter)(nil)
	_ filter.ScopedBelow = (*Filter)(nil)
)

// New returns a filter hiding paths.
func New(paths filter.Patterns) *Filter { return &Filter{PathScope: filter.ScopeOf(paths)} }

// Kind returns "hide".
func (f *Filter) Kind() string { return "hide" }

// Pre refuses every operation on or onto a hidden path.
func (f *Filter) Pre(r *filter.Request) error {
	if f.Covers(r.Path) {
		switch r.Op {
		case filter.OpMknod, filter.OpMkdir, filter.OpSymlink, filter.OpCreate:
			// The same answer whether the lower tree has the name or not.
			return syscall.EACCES
		}
		return syscall.ENOENT
	}
	switch r.Op {
	case filter.OpLink:
		if f.Covers(r.NewPath) {
			return syscall.EACCES
		}
	case filter.OpRename:
		if f.Covers(r.NewPath) {
			return syscall.EACCES
		}
		if f.Paths().Escapes(r.Path, r.NewPath, r.Type == syscall.S_IFDIR) {
			return syscall.EXDEV
		}
	}
	return nil
}

// Keep drops hidden entries from listings.
func (f *Filter) Keep(r *filter.Request, e *filter.DirEntry) bool {
	return !f.Covers(e.Path)
}
