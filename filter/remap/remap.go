// Package remap is the filter that presents other owners and modes, as
// bindfs's --force-user, --force-group and --perms do.
package remap

import (
	"syscall"

	"github.com/sievefs/sievefs/filter"
)

// Config says what the filter presents; nil fields are left as they are.
type Config struct {
	Paths filter.Patterns
	// Whole presents the whole view, the mount root included, whatever
	// Paths say (no pattern matches the root): bindfs's presentation, and
	// that of the uid=, gid= and umask= options of sievefs mount.
	Whole    bool
	Uid, Gid *uint32
	// FileMode is the permission bits of everything but directories and
	// symlinks; DirMode those of directories.
	FileMode, DirMode *uint32
}

// Filter rewrites the owner and permission bits the kernel is shown for
// the paths it matches. The kernel checks permissions against what is
// presented (sievefs mounts with a policy use default_permissions). A
// chmod or chown through the mount that would change a presented
// attribute fails with EPERM (the policy fixes it); one that sets it to
// the presented value succeeds without touching the lower file. Other
// attributes pass through.
type Filter struct {
	filter.PathScope
	c Config
}

var (
	_ filter.AttrFilter  = (*Filter)(nil)
	_ filter.PreFilter   = (*Filter)(nil)
	_ filter.Scoped      = (*Filter)(nil)
	_ filter.ScopedBelow = (*Filter)(nil)
	_ filter.OpScoped    = (*Filter)(nil)
)

// New returns a filter presenting c.
func New(c Config) *Filter { return &Filter{PathScope: filter.ScopeOf(c.Paths), c: c} }

// Covers reports whether the filter presents path.
func (f *Filter) Covers(path string) bool { return f.c.Whole || f.PathScope.Covers(path) }

// CoversBelow reports whether the filter may present a path beneath dir.
func (f *Filter) CoversBelow(dir string) bool { return f.c.Whole || f.PathScope.CoversBelow(dir) }

// Kind returns "remap".
func (f *Filter) Kind() string { return "remap" }

// Config returns what the filter presents.
func (f *Filter) Config() Config { return f.c }

// mode returns the presented permission bits for a node of type typ.
func (f *Filter) mode(typ uint32) *uint32 {
	switch typ {
	case syscall.S_IFDIR:
		return f.c.DirMode
	case syscall.S_IFLNK:
		return nil
	}
	return f.c.FileMode
}

// presents reports whether the filter presents the owner, group or mode
// of a node of type typ.
func (f *Filter) presents(typ uint32) bool {
	return f.c.Uid != nil || f.c.Gid != nil || f.mode(typ) != nil
}

// Attr presents the configured owner and modes.
func (f *Filter) Attr(r *filter.Request, path string, a *filter.Attr) bool {
	if !f.Covers(path) {
		return false
	}
	if f.c.Uid != nil {
		a.Uid = *f.c.Uid
	}
	if f.c.Gid != nil {
		a.Gid = *f.c.Gid
	}
	if m := f.mode(a.Mode & syscall.S_IFMT); m != nil {
		a.Mode = a.Mode&syscall.S_IFMT | *m
	}
	return true
}

// Sees returns the operations the filter judges: setattr, and the xattr
// changes that may change access (ACLs).
func (f *Filter) Sees() filter.OpSet {
	return filter.Ops(filter.OpSetattr, filter.OpSetxattr, filter.OpRemovexattr)
}

// Pre refuses chmod and chown of presented attributes to other values;
// set to the presented values they succeed and leave the lower file alone.
// Setting or removing an extended attribute that changes access (a POSIX
// ACL, see filter.AccessXattr) is a mode change too: refused (EPERM) when
// the filter presents modes or owners.
func (f *Filter) Pre(r *filter.Request) error {
	if !f.Covers(r.Path) {
		return nil
	}
	if r.Op == filter.OpSetxattr || r.Op == filter.OpRemovexattr {
		if filter.AccessXattr(r.Xattr) && f.presents(r.Type) {
			return syscall.EPERM
		}
		return nil
	}
	if r.Op != filter.OpSetattr {
		return nil
	}
	s := &r.SetAttr
	if m := f.mode(r.Type); s.Mode && m != nil {
		if r.Mode&07777 != *m {
			return syscall.EPERM
		}
		s.Mode = false
	}
	if s.Uid && f.c.Uid != nil {
		if s.UidValue != *f.c.Uid {
			return syscall.EPERM
		}
		s.Uid = false
	}
	if s.Gid && f.c.Gid != nil {
		if s.GidValue != *f.c.Gid {
			return syscall.EPERM
		}
		s.Gid = false
	}
	return nil
}
