package sievefs

import (
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/chain"
	"github.com/sievefs/sievefs/internal/lower"
	"github.com/sievefs/sievefs/internal/passthrough"
)

// fileSystem is the dispatcher: it implements go-fuse's RawFileSystem on top
// of the lower tree. Each method turns one FUSE request into calls on the
// lower tree; errors become errnos in one place (status).
type fileSystem struct {
	tree    *lower.Tree
	opts    Options
	log     *slog.Logger
	timeout time.Duration
	euid    uint32
	egid    uint32

	// conn is the FUSE connection, once the kernel has answered INIT.
	conn connection
	// pt is nil when file data is served by the daemon.
	pt           *passthrough.Manager
	ptReason     string // why passthrough is not in use, when it is not
	files        *handleTable[*openFile]
	dirs         *handleTable[*dirHandle]
	budget       fdBudget
	held         *heldFDs     // descriptors held for opens, per uid
	dirFDs       dirFDs       // descriptors of open directories
	daemonOpens  atomic.Int64 // files served by the daemon right now
	daemonServed atomic.Uint64
	stats        opStats
	// filters is the chain that shapes the view; nil when the mount was
	// made without one (then paths is false and no paths are tracked).
	filters atomic.Pointer[chain.Chain]
	paths   bool
	refused refusedNames // names refused by filters, cached as absent
	// ptWriters counts writable passthrough opens per inode.
	ptWriters ptWriters
	// watching is set while the lower tree is watched for changes made
	// beside the mount, and replies use watchTimeout (see watch.go).
	watching    atomic.Bool
	watchReason atomic.Pointer[string] // why it is not, when it is not
}

func newFileSystem(tree *lower.Tree, opts Options, rules *chain.Chain) *fileSystem {
	fs := &fileSystem{
		tree:    tree,
		opts:    opts,
		log:     opts.Logger,
		timeout: opts.Cache.timeout(),
		euid:    uint32(os.Geteuid()),
		egid:    uint32(os.Getegid()),
		files:   newHandleTable[*openFile](),
		dirs:    newHandleTable[*dirHandle](),
		paths:   rules != nil || opts.Debug, // --debug names the view path of each request
	}
	fs.budget = newFDBudget(opts.MaxFDs, opts.MaxInodeFDs)
	fs.held = newHeldFDs(fs.budget.Held, fs.budget.PerUser)
	fs.dirFDs.max = fs.budget.Dirs
	fs.filters.Store(rules)
	return fs
}

func (fs *fileSystem) String() string { return "sievefs" }

// Init attaches go-fuse's server once the kernel has answered INIT.
func (fs *fileSystem) Init(server *fuse.Server) { fs.attach(server) }

// attach makes c the file system's connection, once the kernel has answered
// INIT, and decides whether file data goes through passthrough.
func (fs *fileSystem) attach(c connection) {
	fs.conn = c
	switch {
	case fs.opts.Passthrough == PassthroughOff:
		fs.ptReason = "disabled by --passthrough off"
	case c.KernelSettings().Flags64()&fuse.CAP_PASSTHROUGH == 0:
		fs.ptReason = "the kernel does not offer FUSE passthrough (Linux 6.9+ with CONFIG_FUSE_PASSTHROUGH)"
	case !hasCapSysAdmin():
		fs.ptReason = "the daemon lacks CAP_SYS_ADMIN, which passthrough requires"
	default:
		fs.pt = passthrough.New(noFsetid{c}, fs.opts.MaxBacking)
	}
}

// hasCapSysAdmin reports whether the process has CAP_SYS_ADMIN in effect.
func hasCapSysAdmin() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				return false
			}
			return caps&(1<<unix.CAP_SYS_ADMIN) != 0
		}
	}
	return false
}

// status maps an error to the errno the kernel gets. Errnos pass as they are;
// anything else is EIO and a log line.
func (fs *fileSystem) status(o filter.Op, err error) fuse.Status {
	if err == nil {
		return fuse.OK
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fuse.Status(errno)
	}
	fs.log.Error("unexpected error", "op", o.String(), "err", err)
	return fuse.EIO
}

// owner returns the owner new inodes of this caller get: the caller's, when
// it differs from the daemon's and the daemon may give it.
func (fs *fileSystem) owner(c *fuse.Caller) *lower.Owner {
	if fs.euid != 0 || (c.Uid == fs.euid && c.Gid == fs.egid) {
		return nil
	}
	return &lower.Owner{Uid: c.Uid, Gid: c.Gid}
}

// fillAttr converts lower attributes to FUSE attributes.
func fillAttr(st *unix.Stat_t, a *fuse.Attr) {
	*a = fuse.Attr{
		Ino:       st.Ino,
		Size:      uint64(st.Size),
		Blocks:    uint64(st.Blocks),
		Atime:     uint64(st.Atim.Sec),
		Mtime:     uint64(st.Mtim.Sec),
		Ctime:     uint64(st.Ctim.Sec),
		Atimensec: uint32(st.Atim.Nsec),
		Mtimensec: uint32(st.Mtim.Nsec),
		Ctimensec: uint32(st.Ctim.Nsec),
		Mode:      st.Mode,
		Nlink:     uint32(st.Nlink),
		Owner:     fuse.Owner{Uid: st.Uid, Gid: st.Gid},
		Rdev:      uint32(st.Rdev),
		Blksize:   uint32(st.Blksize),
	}
}

// fillEntry fills a LOOKUP-style reply for ino.
func (fs *fileSystem) fillEntry(ino *lower.Inode, st *unix.Stat_t, out *fuse.EntryOut) {
	out.NodeId = ino.ID
	out.Generation = 0
	fillAttr(st, &out.Attr)
	t := fs.ttl(ino)
	out.SetEntryTimeout(t)
	out.SetAttrTimeout(t)
}

// closeHandles closes the descriptors of opens that were never released:
// the kernel drops RELEASE and RELEASEDIR requests still queued when the
// connection ends. (Backing files go with the connection.)
func (fs *fileSystem) closeHandles() {
	for _, f := range fs.files.drain() {
		fs.closeLock(f)
		if !f.passthrough {
			fs.closeDaemonServed(f)
		}
	}
	for _, d := range fs.dirs.drain() {
		fs.dirFDs.forget(d)
	}
}

// invalidateAll drops what the kernel caches under the names the tree
// recorded (every name, under a policy) and every node's attributes: after
// the filter chain changed, or the watch lost events.
func (fs *fileSystem) invalidateAll() {
	if fs.conn == nil {
		return
	}
	// Directories drop their cached listings too (offset 0: the pages that
	// hold them); other inodes their attributes.
	fs.conn.InodeNotify(lower.RootID, 0, 0)
	for _, n := range fs.refused.drain() {
		fs.conn.EntryNotify(n.parent, n.name)
	}
	for _, n := range fs.tree.Names() {
		if n.Parent != nil {
			fs.conn.EntryNotify(n.Parent.ID, n.Name)
		}
		off := int64(-1)
		if n.Ino.Type == unix.S_IFDIR {
			off = 0
		}
		fs.conn.InodeNotify(n.Ino.ID, off, 0)
	}
}
