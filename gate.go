package sievefs

import (
	"errors"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/chain"
	"github.com/sievefs/sievefs/internal/lower"
)

// The gate. Every FUSE request that names a node starts with gate or
// gateName, which resolve the node, the caller and the chain into one
// request; the handler then asks the request's pre, post and lookup
// decision, never the chain on its own. Requests on open files and
// directories start from their handle (file, dir), whose open passed the
// gate. filter.Op.Info is the table of what each operation may be asked and
// answered; rawOps (ops.go) maps every method of go-fuse's RawFileSystem
// onto it.

// Node IDs of data variants. A regular file whose data some data rules must
// see for a caller is shown to that caller under a node ID of its own: the
// inode's ID with the set of those rules (chain.Chain.Claims) in the top
// byte. The kernel keeps that node's attributes and page cache apart from
// the plain node's, which other callers use with passthrough; its opens are
// all served through the rules' streams.
const variantShift = 56

func nodeID(ino *lower.Inode, mask uint8) uint64 { return ino.ID | uint64(mask)<<variantShift }

func splitNodeID(id uint64) (base uint64, mask uint8) {
	return id & (1<<variantShift - 1), uint8(id >> variantShift)
}

func callerOf(c *fuse.Caller) filter.Caller {
	return filter.Caller{Uid: c.Uid, Gid: c.Gid, Pid: c.Pid}
}

// joinPath joins a view directory path and a name.
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// request is one FUSE request on its way through the gate: what the
// filters see (the embedded filter.Request), the node it is about, and the
// chain that judges it. On a mount without filters the chain is empty and
// no paths are tracked (Path stays "").
type request struct {
	filter.Request
	fs    *fileSystem
	chain *chain.Chain // never nil
	ino   *lower.Inode // the node; for an operation on a name, its directory
	mask  uint8        // the data rules of a data-variant node ID
	name  string       // an operation on a name: the name in the view
	lname string       // and in the lower tree
	// judged is set once the request is complete enough for filters to
	// see it; post-filters see only judged requests.
	judged bool
}

// requestPool keeps requests for reuse: a request escapes to the heap (its
// filter.Request goes to the filters' interfaces), and one allocation of
// 250 bytes per FUSE request showed as a fifth of a lookup's time in
// BenchmarkDispatch.
var requestPool = sync.Pool{New: func() any { return new(request) }}

// newRequest returns an empty request; freeRequest gives it back once its
// handler is done with it.
func (fs *fileSystem) newRequest() *request { return requestPool.Get().(*request) }

func (fs *fileSystem) freeRequest(q *request) {
	*q = request{}
	requestPool.Put(q)
}

// emptyChain judges the requests of a mount made without filters.
var emptyChain, _ = chain.New()

// chain returns the chain requests are judged by now.
func (fs *fileSystem) chain() *chain.Chain {
	if c := fs.filters.Load(); c != nil {
		return c
	}
	return emptyChain
}

// gate starts the request q of operation o on the node id.
func (fs *fileSystem) gate(q *request, o filter.Op, id uint64, c *fuse.Caller) fuse.Status {
	q.fs, q.Op, q.Caller, q.chain = fs, o, callerOf(c), fs.chain()
	base, mask := splitNodeID(id)
	ino := fs.tree.Get(base)
	if ino == nil {
		return fuse.Status(syscall.ESTALE)
	}
	q.ino, q.mask, q.Type = ino, mask, ino.Type
	if fs.paths {
		p, ok := fs.tree.ViewPath(ino)
		if !ok {
			// Every inode the kernel knows was named when it was
			// looked up or made.
			fs.log.Error("inode without a path", "op", o.String(), "inode", ino.ID)
			return fuse.Status(syscall.ESTALE)
		}
		q.Path = p
	}
	q.judged = true
	return fuse.OK
}

// gateName starts the request q of operation o on name in the directory
// dir: q.ino is the directory, q.Path the name's view path and q.lname its
// lower name. A name the view cannot hold ends the request (after the
// post-filters saw it).
func (fs *fileSystem) gateName(q *request, o filter.Op, dir uint64, name string, c *fuse.Caller) fuse.Status {
	if s := fs.gate(q, o, dir, c); !s.Ok() {
		return s
	}
	q.Type, q.name, q.lname = 0, name, name
	if fs.paths {
		dirPath := q.Path
		q.Path = joinPath(dirPath, name)
		lname, err := q.chain.LowerName(dirPath, name)
		if err != nil {
			return fs.status(o, err)
		}
		q.lname = lname
	}
	return fuse.OK
}

// pre runs the pre-filters. It returns OK to go on, or answered when a
// filter answered an operation the table lets filters answer; an answer
// to any other operation ends it with EIO.
func (q *request) pre() (answered bool, s fuse.Status) {
	return q.fs.runPre(q.chain, &q.Request)
}

// runPre runs c's pre-filters on r (see request.pre).
func (fs *fileSystem) runPre(c *chain.Chain, r *filter.Request) (answered bool, s fuse.Status) {
	err := c.Pre(r)
	if err == nil {
		return false, fuse.OK
	}
	if errors.Is(err, filter.ErrAnswered) {
		if r.Op.Info().Answerable() {
			return true, fuse.OK
		}
		fs.log.Error("a filter answered an operation that needs the lower tree", "op", r.Op.String(), "path", r.Path)
		return false, fuse.EIO
	}
	return false, fs.status(r.Op, err)
}

// post runs the post-filters on the result s of a judged request.
func (q *request) post(s fuse.Status) fuse.Status {
	if !q.judged {
		return s
	}
	return q.fs.runPost(q.chain, &q.Request, s)
}

// runPost runs c's post-filters on r's result s.
func (fs *fileSystem) runPost(c *chain.Chain, r *filter.Request, s fuse.Status) fuse.Status {
	if !c.PostSees(r.Op) {
		return s
	}
	var err error
	if !s.Ok() {
		err = syscall.Errno(s)
	}
	return fs.status(r.Op, c.Post(r, err))
}

// The lookup decision. Every node the kernel learns of (a lookup, a
// readdirplus entry, a node made by create, mknod, mkdir, symlink, link or
// tmpfile) passes the pre- and post-filters of OpLookup with its path,
// type and attributes, so that a filter judging nodes judges them the same
// whichever way they come; an operation other than lookup also passes its
// own pre- and post-filters.

// lookupOf returns the lookup request of q's node (q itself for a lookup).
func (q *request) lookupOf() *filter.Request {
	if q.Op == filter.OpLookup {
		return &q.Request
	}
	return &filter.Request{Op: filter.OpLookup, Caller: q.Caller, Path: q.Path, Type: q.Type}
}

// preLookup runs the pre-filters of the lookup decision for the node an
// operation other than lookup is about to find or make.
func (q *request) preLookup() fuse.Status {
	if q.Op == filter.OpLookup || !q.chain.Observes(filter.OpLookup) {
		return fuse.OK
	}
	_, s := q.fs.runPre(q.chain, q.lookupOf())
	return s
}

// admit finishes the lookup decision for ino, found or made as q.name in
// q.ino with attributes st: it names the node, fills the entry out (node
// ID, presented attributes, timeouts) and runs the post-filters of lookup.
// When they refuse the node, the lookup count the tree took is dropped and
// their error returned. For a lookup these are the request's own
// post-filters.
func (q *request) admit(ino *lower.Inode, st *unix.Stat_t, out *fuse.EntryOut) fuse.Status {
	fs := q.fs
	if !fs.paths {
		fs.fillEntry(ino, st, out)
		return fuse.OK
	}
	fs.tree.SetName(ino, q.ino, q.name)
	if q.Op != filter.OpLookup && !q.chain.PostSees(filter.OpLookup) {
		fs.entry(q.chain, &q.Request, q.Path, ino, st, out)
		return fuse.OK
	}
	l := q.lookupOf()
	l.Type = ino.Type
	fs.entry(q.chain, l, q.Path, ino, st, out)
	l.Attr = filterAttr(&out.Attr)
	s := fs.runPost(q.chain, l, fuse.OK)
	if !s.Ok() {
		fs.tree.Forget(ino.ID, 1)
	}
	return s
}

// negative answers a lookup that found nothing (s from the lower tree, or
// from the filters when refused): after the post-filters, ENOENT becomes a
// negative entry the kernel may cache, unless the answer depends on the
// caller. A name the filters refused is cached as an absent one is, so that
// a caller cannot tell a hidden name from an absent one by whether its next
// lookup reaches the daemon; it is remembered (refusedNames) so that a
// policy reload can drop it.
func (q *request) negative(s fuse.Status, refused bool, out *fuse.EntryOut) fuse.Status {
	s = q.post(s)
	if s != fuse.ENOENT {
		return s
	}
	t := q.fs.timeout // absent names are not watched (see ttl)
	if q.fs.paths {
		if q.chain.DependsOnCaller(q.Path) {
			t = 0
		}
		if !strings.Contains(q.Path, "/") && q.fs.filters.Load() != nil {
			// A reload drops what the kernel caches under each known
			// directory, absent names included, but there is no way
			// to do that for the root's: its absent names are not
			// cached when a policy may change (a mount made with
			// rules; one that tracks paths only for --debug cannot
			// change them).
			t = 0
		}
	}
	if t > 0 && refused && !q.fs.refused.add(q.ino.ID, q.name) {
		t = 0
	}
	if t == 0 {
		return s
	}
	*out = fuse.EntryOut{}
	out.SetEntryTimeout(t)
	return fuse.OK
}

// refusedNames are the names refused by filters that the kernel was told
// to cache as absent, by directory node ID.
type refusedNames struct {
	mu sync.Mutex
	m  map[refusedName]struct{}
}

type refusedName struct {
	parent uint64
	name   string
}

// maxRefusedNames bounds refusedNames; past it refused names are not
// cached.
const maxRefusedNames = 1 << 16

// add remembers a refused name and reports whether it may be cached.
func (r *refusedNames) add(parent uint64, name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[refusedName]struct{})
	}
	k := refusedName{parent, name}
	if _, ok := r.m[k]; !ok && len(r.m) >= maxRefusedNames {
		return false
	}
	r.m[k] = struct{}{}
	return true
}

// drain returns the names remembered and forgets them.
func (r *refusedNames) drain() []refusedName {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]refusedName, 0, len(r.m))
	for k := range r.m {
		out = append(out, k)
	}
	r.m = nil
	return out
}

// present runs the attribute filters on the attributes a of the node at
// path, as shown to r's caller. A directory beneath which the view may
// lack entries of the lower tree has its link count shown as 1 ("not
// counted", as btrfs does): the lower count would tell how many
// subdirectories are hidden.
func present(c *chain.Chain, r *filter.Request, path string, a *fuse.Attr) {
	if a.Mode&unix.S_IFMT == unix.S_IFDIR && c.MayDropBelow(path) {
		// Nor its size and blocks, which grow with its entries (on tmpfs
		// by 20 bytes per entry).
		a.Nlink, a.Size, a.Blocks = 1, 0, 0
	}
	if !c.HasAttr() {
		return
	}
	fa := filterAttr(a)
	c.Attr(r, path, &fa)
	a.Ino, a.Mode, a.Nlink, a.Owner.Uid, a.Owner.Gid, a.Size = fa.Ino, fa.Mode, fa.Nlink, fa.Uid, fa.Gid, fa.Size
}

// filterAttr returns the part of FUSE attributes filters see.
func filterAttr(a *fuse.Attr) filter.Attr {
	return filter.Attr{Ino: a.Ino, Mode: a.Mode, Nlink: a.Nlink, Uid: a.Uid, Gid: a.Gid, Size: a.Size}
}

// timeoutFor is how long the kernel may cache what it is told about path,
// the inode ino: not at all when the filters' answer depends on the caller.
func (fs *fileSystem) timeoutFor(c *chain.Chain, path string, ino *lower.Inode) time.Duration {
	if c.DependsOnCaller(path) {
		return 0
	}
	return fs.ttl(ino)
}

// entry fills a LOOKUP-style reply for ino, known as path in the view: the
// node ID (a data variant when data rules claim the file for the caller),
// presented attributes and cache timeouts.
func (fs *fileSystem) entry(c *chain.Chain, r *filter.Request, path string, ino *lower.Inode, st *unix.Stat_t, out *fuse.EntryOut) {
	fillAttr(st, &out.Attr)
	present(c, r, path, &out.Attr)
	fs.entryNode(c, r.Caller, path, ino, out)
}

// entryNode fills the node ID and the timeouts of a LOOKUP-style reply
// whose attributes are filled and presented.
func (fs *fileSystem) entryNode(c *chain.Chain, caller filter.Caller, path string, ino *lower.Inode, out *fuse.EntryOut) {
	out.NodeId, out.Generation = ino.ID, 0
	if ino.Type == unix.S_IFREG && c.HasData() {
		out.NodeId = nodeID(ino, claims(c, caller, path))
	}
	t := fs.timeoutFor(c, path, ino)
	out.SetEntryTimeout(t)
	out.SetAttrTimeout(t)
}

// claims asks the data rules which must see the data of the regular file
// at path for caller. The answer depends on the path and the caller only.
func claims(c *chain.Chain, caller filter.Caller, path string) uint8 {
	if !c.MayClaim(caller, path) {
		return 0
	}
	return c.Claims(&filter.Request{Op: filter.OpOpen, Caller: caller, Path: path, Type: unix.S_IFREG})
}
