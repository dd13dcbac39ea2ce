package lower

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ChangeKind says what changed in the lower tree beside the mount.
type ChangeKind uint8

const (
	// EntryChanged: the name Change.Name in Change.Dir was made, removed or
	// moved.
	EntryChanged ChangeKind = iota
	// AttrChanged: the attributes of Change.Ino changed (mode, owner, times,
	// link count).
	AttrChanged
	// DataChanged: the content of Change.Ino changed, and with it its size
	// or times.
	DataChanged
)

// Change is one change a Watch reports, in terms of the inode table.
type Change struct {
	Kind ChangeKind
	Dir  *Inode // EntryChanged: the directory
	Name string // EntryChanged: the lower name in Dir
	Ino  *Inode // AttrChanged, DataChanged: the inode
}

// dirMask is what a watched directory reports: changes of its entries and
// of its own attributes. Not its children's (FAN_EVENT_ON_CHILD): with a
// parent interested in them, every read and write of a child pays for a
// reference to the parent.
const dirMask = unix.FAN_CREATE | unix.FAN_DELETE | unix.FAN_MOVED_FROM | unix.FAN_MOVED_TO |
	unix.FAN_ATTRIB | unix.FAN_ONDIR

// fileMask is what a watched non-directory reports: changes of its
// attributes and content. Reads are not watched, so they cost nothing.
const fileMask = unix.FAN_ATTRIB | unix.FAN_MODIFY | unix.FAN_CLOSE_WRITE

const entryEvents = unix.FAN_CREATE | unix.FAN_DELETE | unix.FAN_MOVED_FROM | unix.FAN_MOVED_TO

// watchBatch is how long the watcher lets events gather after the first one
// of a burst: the kernel merges repeated events on one file meanwhile (a
// writer's every write is one event), and the daemon reads them in one go.
const watchBatch = 2 * time.Millisecond

// retireDelay is how long the mark of an inode the kernel forgot stays
// before it is removed. The kernel forgets inodes in bursts (memory
// pressure, drop_caches) and often looks the same files up again soon after
// (the next scan of the tree): a mark still there needs no removal, and the
// removals that are due run on the watcher's goroutine, off the requests.
const retireDelay = time.Second

// reapBatch is the most marks the watcher removes before it looks for
// events again.
const reapBatch = 256

// localFilesystems are the filesystem types (statfs f_type) whose every
// change passes through this kernel, where fanotify sees it. A network or
// FUSE lower can change without the kernel knowing.
var localFilesystems = map[int64]string{
	0xEF53:     "ext4",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0x01021994: "tmpfs",
	0xF2F52010: "f2fs",
	0xca451a4e: "bcachefs",
	0x2fc12fc1: "zfs",
}

// watcher is a fanotify group with an inode mark on each inode the table
// holds (see Tree.Watch).
type watcher struct {
	fd       int // the fanotify group
	wake     int // an eventfd that wakes the loop: to stop, or to report lost
	self     int32
	stopping atomic.Bool
	lost     atomic.Bool // a mark could not be added: report lost events
	done     chan struct{}

	mu       sync.Mutex
	byHandle map[string]*Inode // directories marked, by file handle
	handles  map[*Inode]string // and their handles
	retired  map[Key]*Inode    // forgotten inodes whose marks are still there (see unwatch)
	retiring []retiredMark     // the same, oldest first
	nRetired atomic.Int64      // len(retired), read without mu by revive

	writesMu        sync.Mutex
	writers         map[*Inode]int32 // regular files open for writing through the mount
	unwatchedWrites map[*Inode]bool  // writers whose marks do not ask for writes (see OpenedForWrite)
}

// retiredMark is an inode the kernel forgot at a time.
type retiredMark struct {
	ino *Inode
	at  time.Time
}

// Watch reports changes made to the lower tree beside the mount, by other
// processes than this one, to fn: the entries and attributes of each
// directory the table holds, and the attributes and content of each other
// inode, until the kernel forgets it. Each mark keeps its lower inode in
// memory (an evictable one would go, unseen, with an inode the lower
// filesystem reclaims, and the changes to it with it), so the kernel's own
// reclaim of the mount's inodes bounds them. fn runs on the watcher's
// goroutine with the changes of one burst; lost says that events were lost
// and anything may have changed. Watch needs CAP_SYS_ADMIN and a local
// filesystem that reports file handles; the error says why it cannot watch.
// Only inodes on the root's filesystem are watched (see Watched).
func (t *Tree) Watch(fn func(changes []Change, lost bool)) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(t.rootFD, &sfs); err != nil {
		return fmt.Errorf("statfs lower: %w", err)
	}
	if _, ok := localFilesystems[sfs.Type]; !ok {
		return fmt.Errorf("filesystem type %#x is not known to change only through this kernel", sfs.Type)
	}
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK|
		unix.FAN_REPORT_DFID_NAME|unix.FAN_UNLIMITED_QUEUE|unix.FAN_UNLIMITED_MARKS, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fanotify_init: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("eventfd: %w", err)
	}
	w := &watcher{fd: fd, wake: wake, self: int32(os.Getpid()), done: make(chan struct{}),
		byHandle: make(map[string]*Inode), handles: make(map[*Inode]string),
		retired: make(map[Key]*Inode),
		writers: make(map[*Inode]int32), unwatchedWrites: make(map[*Inode]bool)}
	if err := w.mark(t.root, t.rootFD); err != nil {
		unix.Close(fd)
		unix.Close(wake)
		return err
	}
	t.watch.Store(w)
	go w.run(t, fn)
	return nil
}

// Watched reports whether changes to ino are reported: those to inodes on
// the root's filesystem are.
func (t *Tree) Watched(ino *Inode) bool {
	return t.watch.Load() != nil && ino.Key.Dev == t.rootDev
}

// watchNew marks an inode just added to the table, found as name in the
// directory dirfd: follow says whether name is a link to follow to it (a
// /proc/self/fd link) rather than the inode itself.
func (t *Tree) watchNew(ino *Inode, dirfd int, name string, follow bool) {
	w := t.watch.Load()
	if w == nil || ino.Key.Dev != t.rootDev {
		return
	}
	flags := uint(unix.FAN_MARK_ADD)
	if !follow {
		flags |= unix.FAN_MARK_DONT_FOLLOW
	}
	err := unix.FanotifyMark(w.fd, flags, markMask(ino), dirfd, name)
	if err == nil && ino.Type == unix.S_IFDIR {
		// Its own changes are reported by its handle.
		at := 0
		if follow {
			at = unix.AT_SYMLINK_FOLLOW
		}
		var h unix.FileHandle
		if h, _, err = unix.NameToHandleAt(dirfd, name, at); err == nil {
			w.known(ino, handleKey(uint32(h.Type()), h.Bytes()))
		}
	}
	if err == nil {
		w.revive(ino.Key)
	}
	if err != nil && err != unix.ENOENT {
		w.missed()
	}
}

// revive keeps the mark of a forgotten inode the table has again (as key):
// its removal is no longer due.
func (w *watcher) revive(key Key) {
	if w.nRetired.Load() == 0 {
		// The common case: a lookup takes no lock for it. A retirement
		// that races this check is undone by removeMark's re-mark.
		return
	}
	w.mu.Lock()
	delete(w.retired, key)
	w.nRetired.Store(int64(len(w.retired)))
	w.mu.Unlock()
}

// markMask is what the mark of ino reports.
func markMask(ino *Inode) uint64 {
	if ino.Type == unix.S_IFDIR {
		return dirMask
	}
	return fileMask
}

// missed reports that a mark could not be added, so that changes to its
// inode would go unseen, as lost events.
func (w *watcher) missed() {
	w.lost.Store(true)
	w.poke()
}

// known records the handle of a directory.
func (w *watcher) known(ino *Inode, key string) {
	w.mu.Lock()
	w.byHandle[key] = ino
	w.handles[ino] = key
	w.mu.Unlock()
}

// unwatch retires the mark of an inode the kernel forgot (the table no
// longer holds it): the watcher removes it retireDelay later, letting the
// lower filesystem reclaim the inode, unless a lookup finds the file again
// meanwhile. An inode that cannot be reached once its descriptor is closed
// (it has no handle) loses its mark now.
func (t *Tree) unwatch(ino *Inode) {
	w := t.watch.Load()
	if w == nil || ino.Key.Dev != t.rootDev {
		return
	}
	if !t.fds.reopenable(ino) {
		w.forgetHandle(ino)
		t.removeMark(w, ino)
		return
	}
	w.mu.Lock()
	w.forgetHandleLocked(ino)
	w.retired[ino.Key] = ino
	w.nRetired.Store(int64(len(w.retired)))
	w.retiring = append(w.retiring, retiredMark{ino, time.Now()})
	first := len(w.retiring) == 1
	w.mu.Unlock()
	if first {
		w.poke() // the loop may be waiting for events only
	}
}

// forgetHandle drops the handle of a directory the table no longer holds.
func (w *watcher) forgetHandle(ino *Inode) {
	w.mu.Lock()
	w.forgetHandleLocked(ino)
	w.mu.Unlock()
}

func (w *watcher) forgetHandleLocked(ino *Inode) {
	if h, ok := w.handles[ino]; ok {
		delete(w.handles, ino)
		if w.byHandle[h] == ino {
			delete(w.byHandle, h)
		}
	}
}

// reapWait is how long the loop may wait for events before a retired mark
// is due (in milliseconds, -1: none retired).
func (w *watcher) reapWait() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.retiring) == 0 {
		return -1
	}
	d := retireDelay - time.Since(w.retiring[0].at)
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// reap removes up to reapBatch retired marks that are due.
func (t *Tree) reap(w *watcher) {
	var due []*Inode
	w.mu.Lock()
	now := time.Now()
	for len(w.retiring) > 0 && len(due) < reapBatch && now.Sub(w.retiring[0].at) >= retireDelay {
		ino := w.retiring[0].ino
		w.retiring[0] = retiredMark{}
		w.retiring = w.retiring[1:]
		if w.retired[ino.Key] == ino {
			delete(w.retired, ino.Key)
			due = append(due, ino)
		}
	}
	w.nRetired.Store(int64(len(w.retired)))
	w.mu.Unlock()
	for _, ino := range due {
		t.removeMark(w, ino)
	}
}

// removeMark removes the mark of the forgotten inode ino. A lookup may have
// found the same file again meanwhile and marked it before the removal: it is
// marked again. One that adds it to the table after this check marks it
// after the removal.
func (t *Tree) removeMark(w *watcher, ino *Inode) {
	t.unmark(w, ino)
	t.mu.Lock()
	again := t.byKey[ino.Key]
	t.mu.Unlock()
	if again == nil {
		return
	}
	if fd, err := t.acquire(again); err == nil {
		dirfd, name := t.magicLink(fd)
		t.watchNew(again, dirfd, name, true)
		t.Release(again)
	}
}

// unmark removes the mark of ino, which the table no longer holds, the
// cheapest way it can reach the lower inode: by the descriptor it holds, by
// its name in its parent (an inode never opened), or by its handle. It opens
// nothing for the table: a forgotten inode must not take a place in the
// descriptor cache. ENOENT from the removal: the file was deleted and its
// mark went with it.
func (t *Tree) unmark(w *watcher, ino *Inode) {
	mask := markMask(ino)
	fd, r := t.fds.held(ino)
	handle, byHandle, lazy := r.handle, r.byHandle, r.at
	switch {
	case fd >= 0:
		dirfd, name := t.magicLink(fd)
		_ = unix.FanotifyMark(w.fd, unix.FAN_MARK_REMOVE, mask, dirfd, name)
		t.Release(ino)
	case lazy != nil:
		pfd, err := t.acquire(lazy.parent)
		if err != nil {
			return
		}
		defer t.Release(lazy.parent)
		if unix.FanotifyMark(w.fd, unix.FAN_MARK_REMOVE|unix.FAN_MARK_DONT_FOLLOW, mask, pfd, lazy.name) != nil {
			return
		}
		var st unix.Stat_t
		if unix.Fstatat(pfd, lazy.name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || (Key{st.Dev, st.Ino}) == ino.Key {
			return
		}
		// The name holds another file now, whose mark went instead: mark
		// it again if the table holds it. Ino's lower inode keeps its mark
		// until it is deleted.
		if other := t.ByKey(&st); other != nil {
			t.watchNew(other, pfd, lazy.name, false)
		}
	case byHandle:
		fd, err := unix.OpenByHandleAt(t.mountFD, handle, unix.O_PATH|unix.O_CLOEXEC)
		if err != nil {
			return
		}
		dirfd, name := t.magicLink(fd)
		_ = unix.FanotifyMark(w.fd, unix.FAN_MARK_REMOVE, mask, dirfd, name)
		unix.Close(fd)
	}
}

// OpenedForWrite tells the watch that the regular file ino is open for
// writing through the mount, until the matching ClosedForWrite. The kernel
// knows of the writes made through the mount; watching them would cost every
// write a pass through fsnotify. So once such a file is seen written, its
// mark stops asking for writes (FAN_MODIFY) until its last writer through the
// mount is gone; it still reports attribute changes and the close of a
// writer (FAN_CLOSE_WRITE), so writes made beside the mount meanwhile are
// reported when their writer closes the file.
func (t *Tree) OpenedForWrite(ino *Inode) {
	w := t.watch.Load()
	if w == nil || ino.Type != unix.S_IFREG {
		return
	}
	w.writesMu.Lock()
	w.writers[ino]++
	w.writesMu.Unlock()
}

// ClosedForWrite ends an OpenedForWrite.
func (t *Tree) ClosedForWrite(ino *Inode) {
	w := t.watch.Load()
	if w == nil || ino.Type != unix.S_IFREG {
		return
	}
	w.writesMu.Lock()
	defer w.writesMu.Unlock()
	if n := w.writers[ino] - 1; n > 0 {
		w.writers[ino] = n
		return
	}
	delete(w.writers, ino)
	if w.unwatchedWrites[ino] {
		delete(w.unwatchedWrites, ino)
		t.markWrites(w, ino, unix.FAN_MARK_ADD)
	}
}

// unwatchWrites stops the mark of ino from asking for its writes if it is
// open for writing through the mount.
func (t *Tree) unwatchWrites(w *watcher, ino *Inode) {
	w.writesMu.Lock()
	defer w.writesMu.Unlock()
	if w.writers[ino] > 0 && !w.unwatchedWrites[ino] {
		w.unwatchedWrites[ino] = true
		t.markWrites(w, ino, unix.FAN_MARK_REMOVE)
	}
}

// markWrites adds FAN_MODIFY to (FAN_MARK_ADD) or removes it from
// (FAN_MARK_REMOVE) the mask of ino's mark. Caller holds w.writesMu, so that
// a file's last close and a late event of its writes do not cross. When
// writes cannot be watched again (the inode cannot be reached, or the mark
// refused), changes beside the mount would go unseen for the long cache
// timeout: they are reported as missed, as a mark that cannot be added is.
// A removal that fails leaves the writes watched, which costs a report of
// writes made through the mount, not correctness.
func (t *Tree) markWrites(w *watcher, ino *Inode, op uint) {
	fd, err := t.acquire(ino)
	if err == nil {
		dirfd, name := t.magicLink(fd)
		err = unix.FanotifyMark(w.fd, op, unix.FAN_MODIFY, dirfd, name)
		t.Release(ino)
	}
	if err != nil && op == unix.FAN_MARK_ADD && err != unix.ENOENT {
		w.missed()
	}
}

// child returns the inode the table has for name in dir, if any.
func (t *Tree) child(dir *Inode, name string) *Inode {
	fd, err := t.acquire(dir)
	if err != nil {
		return nil
	}
	defer t.Release(dir)
	var st unix.Stat_t
	if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return nil
	}
	return t.ByKey(&st)
}

// mark adds the directory ino, open as fd, to the group: the root, which no
// lookup adopts.
func (w *watcher) mark(ino *Inode, fd int) error {
	h, _, err := unix.NameToHandleAt(fd, "", unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("name_to_handle_at: %w", err)
	}
	key := handleKey(uint32(h.Type()), h.Bytes())
	if err := unix.FanotifyMark(w.fd, unix.FAN_MARK_ADD, dirMask, fd, "."); err != nil {
		return fmt.Errorf("fanotify_mark: %w", err)
	}
	w.known(ino, key)
	return nil
}

func handleKey(typ uint32, b []byte) string {
	k := make([]byte, 4+len(b))
	binary.NativeEndian.PutUint32(k, typ)
	copy(k[4:], b)
	return string(k)
}

// poke wakes the loop.
func (w *watcher) poke() { unix.Write(w.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0}) }

// close stops the loop and closes the group.
func (w *watcher) close() {
	w.stopping.Store(true)
	w.poke()
	<-w.done
	unix.Close(w.fd)
	unix.Close(w.wake)
}

// run reads the group's events until close, a burst at a time, and hands
// them to fn; between bursts it removes the retired marks that are due.
func (w *watcher) run(t *Tree, fn func([]Change, bool)) {
	defer close(w.done)
	buf := make([]byte, 256<<10)
	var ev8 [8]byte
	pfds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}, {Fd: int32(w.wake), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfds, w.reapWait())
		if err != nil && err != unix.EINTR {
			fn(nil, true)
			return
		}
		if w.stopping.Load() {
			return
		}
		if n <= 0 {
			t.reap(w)
			continue
		}
		unix.Read(w.wake, ev8[:])
		time.Sleep(watchBatch)
		b := burst{seen: make(map[changeKey]bool)}
		for {
			n, err := unix.Read(w.fd, buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n <= 0 {
				break
			}
			w.parse(t, buf[:n], &b)
		}
		if w.lost.Swap(false) {
			b.lost = true
		}
		if len(b.changes) > 0 || b.lost {
			fn(b.changes, b.lost)
		}
		t.reap(w)
	}
}

// burst gathers the changes of one read, each once.
type burst struct {
	changes []Change
	seen    map[changeKey]bool
	lost    bool
}

type changeKey struct {
	kind ChangeKind
	dir  *Inode
	name string
}

func (b *burst) add(c Change, dir *Inode, name string) {
	k := changeKey{c.Kind, dir, name}
	if b.seen[k] {
		return
	}
	b.seen[k] = true
	b.changes = append(b.changes, c)
}

// Offsets in struct fanotify_event_metadata, fanotify_event_info_header
// and fanotify_event_info_fid (which holds a struct file_handle).
const (
	evLen, evMetaLen, evMask, evPid = 0, 6, 8, 20
	infoType, infoLen               = 0, 2
	infoHandleBytes, infoHandleType = 12, 16
	infoHandle                      = 20
)

// parse turns the events in buf into changes of the tree.
func (w *watcher) parse(t *Tree, buf []byte, b *burst) {
	ne := binary.NativeEndian
	for len(buf) >= 24 {
		n := int(ne.Uint32(buf[evLen:]))
		if n < 24 || n > len(buf) {
			return
		}
		ev := buf[:n]
		buf = buf[n:]
		mask := ne.Uint64(ev[evMask:])
		if mask&unix.FAN_Q_OVERFLOW != 0 {
			b.lost = true
			continue
		}
		if int32(ne.Uint32(ev[evPid:])) == w.self {
			continue // the daemon's own change: the kernel was told in the reply
		}
		dir, name, ok := w.dirName(ev[ne.Uint16(ev[evMetaLen:]):])
		if !ok {
			continue
		}
		if mask&entryEvents != 0 {
			b.add(Change{Kind: EntryChanged, Dir: dir, Name: name}, dir, name)
		}
		if mask&(unix.FAN_ATTRIB|unix.FAN_MODIFY|unix.FAN_CLOSE_WRITE) == 0 {
			continue
		}
		kind := AttrChanged
		if mask&(unix.FAN_MODIFY|unix.FAN_CLOSE_WRITE) != 0 {
			kind = DataChanged
		}
		ino := dir
		if name != "" && name != "." {
			if ino = t.child(dir, name); ino == nil {
				continue
			}
		}
		if mask&unix.FAN_MODIFY != 0 && ino.Type == unix.S_IFREG {
			t.unwatchWrites(w, ino)
		}
		b.add(Change{Kind: kind, Ino: ino}, ino, "")
	}
}

// dirName finds the directory and name of an event's DFID_NAME (or DFID)
// record, for a directory the group marked.
func (w *watcher) dirName(info []byte) (*Inode, string, bool) {
	ne := binary.NativeEndian
	for len(info) >= 4 {
		n := int(ne.Uint16(info[infoLen:]))
		if n < 4 || n > len(info) {
			return nil, "", false
		}
		rec := info[:n]
		info = info[n:]
		typ := rec[infoType]
		if typ != unix.FAN_EVENT_INFO_TYPE_DFID_NAME && typ != unix.FAN_EVENT_INFO_TYPE_DFID || len(rec) < infoHandle {
			continue
		}
		hb := int(ne.Uint32(rec[infoHandleBytes:]))
		if infoHandle+hb > len(rec) {
			return nil, "", false
		}
		key := handleKey(ne.Uint32(rec[infoHandleType:]), rec[infoHandle:infoHandle+hb])
		w.mu.Lock()
		dir := w.byHandle[key]
		w.mu.Unlock()
		if dir == nil {
			return nil, "", false
		}
		name := rec[infoHandle+hb:]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		return dir, string(name), true
	}
	return nil, "", false
}
