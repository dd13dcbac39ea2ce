// Package deny is the filter that refuses chosen operations on paths.
package deny

import (
	"syscall"

	"github.com/sievefs/sievefs/filter"
)

// Filter fails the operations it lists on the paths it matches (for rename
// and link, the source or the destination) with an errno, EACCES unless
// configured. Files cannot be linked, nor directories whose subtree may
// hold such paths renamed, out of the patterns' reach (EXDEV).
type Filter struct {
	ops [filter.NumOps]bool
	filter.PathScope
	errno syscall.Errno
}

var (
	_ filter.PreFilter   = (*Filter)(nil)
	_ filter.Scoped      = (*Filter)(nil)
	_ filter.ScopedBelow = (*Filter)(nil)
	_ filter.OpScoped    = (*Filter)(nil)
)

// New returns a filter refusing ops on paths with errno (0 means EACCES).
func New(ops []filter.Op, paths filter.Patterns, errno syscall.Errno) *Filter {
	f := &Filter{PathScope: filter.ScopeOf(paths), errno: errno}
	if f.errno == 0 {
		f.errno = syscall.EACCES
	}
	for _, o := range ops {
		f.ops[o] = true
	}
	return f
}

// Kind returns "deny".
func (f *Filter) Kind() string { return "deny" }

// Errno returns the errno denied operations fail with.
func (f *Filter) Errno() syscall.Errno { return f.errno }

// Ops returns the denied operations.
func (f *Filter) Ops() []filter.Op {
	var out []filter.Op
	for o, on := range f.ops {
		if on {
			out = append(out, filter.Op(o))
		}
	}
	return out
}

// Sees returns the operations the filter sees: those it denies, and rename
// and link, which it keeps from taking files out of its reach; with
// setattr, also setxattr and removexattr, which change access through
// ACLs (see filter.AccessXattr).
func (f *Filter) Sees() filter.OpSet {
	s := filter.Ops(filter.OpRename, filter.OpLink)
	for o, on := range f.ops {
		if on {
			s |= filter.Ops(filter.Op(o))
		}
	}
	if f.ops[filter.OpSetattr] {
		s |= filter.Ops(filter.OpSetxattr, filter.OpRemovexattr)
	}
	return s
}

// Pre refuses the listed operations under the paths.
func (f *Filter) Pre(r *filter.Request) error {
	both := r.Op == filter.OpRename || r.Op == filter.OpLink
	if f.ops[r.Op] && (f.Covers(r.Path) || both && f.Covers(r.NewPath)) {
		return f.errno
	}
	// An ACL is a mode change: denied with setattr.
	if f.ops[filter.OpSetattr] && (r.Op == filter.OpSetxattr || r.Op == filter.OpRemovexattr) &&
		filter.AccessXattr(r.Xattr) && f.Covers(r.Path) {
		return f.errno
	}
	switch r.Op {
	case filter.OpRename:
		if f.Paths().Escapes(r.Path, r.NewPath, r.Type == syscall.S_IFDIR) {
			return syscall.EXDEV
		}
	case filter.OpLink:
		// A link elsewhere would be a way around the denial.
		if f.Paths().Escapes(r.Path, r.NewPath, false) {
			return syscall.EXDEV
		}
	}
	return nil
}
