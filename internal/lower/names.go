package lower

import (
	"strings"

	"golang.org/x/sys/unix"
)

// location is where the kernel last found an inode in the view: the
// directory and the name (as the view shows it). Inodes keep their
// directory's Inode alive through it, so that a path can always be built;
// a directory forgotten by the kernel can only be reached again through a
// new lookup, which gives its children new locations as they are looked up.
type location struct {
	parent *Inode
	name   string
}

// SetName records that the kernel knows ino as name in parent. A hard-linked
// file has several names; the last one recorded wins. An unnamed inode
// (O_TMPFILE) is recorded with an empty name and takes its directory's path.
func (t *Tree) SetName(ino, parent *Inode, name string) {
	if ino == t.root {
		return
	}
	if l := ino.loc.Load(); l != nil && l.parent == parent && l.name == name {
		return
	}
	ino.loc.Store(&location{parent: parent, name: name})
}

// ViewPath returns the inode's path relative to the root as recorded by
// SetName: "" for the root. An inode without a recorded name is reported as
// not ok.
func (t *Tree) ViewPath(ino *Inode) (string, bool) {
	var elems [32]string
	names := elems[:0]
	size := 0
	for ino != t.root {
		l := ino.loc.Load()
		if l == nil {
			return "", false
		}
		if l.name != "" {
			names = append(names, l.name)
			size += len(l.name) + 1
		}
		ino = l.parent
	}
	if len(names) == 0 {
		return "", true
	}
	var b strings.Builder
	b.Grow(size)
	for i := len(names) - 1; i >= 0; i-- {
		b.WriteString(names[i])
		if i > 0 {
			b.WriteByte('/')
		}
	}
	return b.String(), true
}

// Named is an inode and where the view shows it.
type Named struct {
	Ino    *Inode
	Parent *Inode
	Name   string
}

// Names returns every inode of the table and, when it was recorded, where
// the view shows it (Parent nil otherwise), for dropping what the kernel
// caches.
func (t *Tree) Names() []Named {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Named, 0, len(t.byID))
	for _, ino := range t.byID {
		n := Named{Ino: ino}
		if l := ino.loc.Load(); l != nil && l.name != "" {
			n.Parent, n.Name = l.parent, l.name
		}
		out = append(out, n)
	}
	return out
}

// ByKey returns the table's inode of a lower (dev, ino) right now, or nil.
func (t *Tree) ByKey(st *unix.Stat_t) *Inode {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.byKey[Key{st.Dev, st.Ino}]
}

// StatAt returns the attributes of name in parent, without following it
// and without adding it to the table.
func (t *Tree) StatAt(parent *Inode, name string, st *unix.Stat_t) error {
	return t.inDir(parent, name, func(pfd int) error {
		return unix.Fstatat(pfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
	})
}
