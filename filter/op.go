package filter

// Op is one filesystem operation. Its names are the same in policy files,
// logs and metrics.
type Op uint8

// The operations, one per FUSE request the dispatcher serves.
const (
	OpLookup Op = iota
	OpForget
	OpGetattr
	OpSetattr
	OpMknod
	OpMkdir
	OpUnlink
	OpRmdir
	OpRename
	OpLink
	OpSymlink
	OpReadlink
	OpAccess
	OpStatfs
	OpStatx
	OpGetxattr
	OpListxattr
	OpSetxattr
	OpRemovexattr
	OpCreate
	OpTmpfile
	OpOpen
	OpRead
	OpWrite
	OpFlush
	OpFsync
	OpRelease
	OpLseek
	OpFallocate
	OpCopyFileRange
	OpOpendir
	OpReaddir
	OpReaddirplus
	OpReleasedir
	OpFsyncdir
	OpSetlk
	OpSetlkw
	NumOps // the number of operations, not one
)

// Families is a set of filter families.
type Families uint8

// The filter families, as bits of Families.
const (
	FamilyPre   Families = 1 << iota // PreFilter
	FamilyPost                       // PostFilter
	FamilyAttr                       // AttrFilter: the reply carries attributes
	FamilyDir                        // DirFilter: the reply lists entries
	FamilyNames                      // NameMapper: the request or reply names entries
	FamilyData                       // DataFilter: the claim, or the claimed open's stream
)

// OpInfo is what the dispatcher's one gate knows of an operation: the filter
// families that see it, whether a PreFilter may answer it, and, for an
// operation that pre- and post-filters never see, why that is safe.
type OpInfo struct {
	// Families are the filter families that take part in the operation.
	Families Families
	// Answer names the outputs a PreFilter fills when it answers the
	// operation (returns ErrAnswered); "-" for an operation without
	// outputs, and "" when the operation cannot be answered, because its
	// reply must name a node or an open of the lower tree: an answer then
	// ends it with EIO.
	Answer string
	// Node says how the request names what it is about: "node" (a node
	// ID), "name" (a name in a directory node), "open" (a file or
	// directory handle) or "none".
	Node string
	// Why says, for an operation without FamilyPre, why the filters need
	// not judge it.
	Why string
}

// Filtered reports whether pre- and post-filters see the operation.
func (i OpInfo) Filtered() bool { return i.Families&FamilyPre != 0 }

// Answerable reports whether a PreFilter may answer the operation.
func (i OpInfo) Answerable() bool { return i.Answer != "" }

const (
	famPrePost  = FamilyPre | FamilyPost
	famNodeMade = famPrePost | FamilyAttr | FamilyNames | FamilyData
	whyOpen     = "acts on an open, which was judged when it was opened (open, create, tmpfile, opendir)"
	whyStream   = "moves file data of an open: served through the stream of the data rules that claimed the file for the opener, else by passthrough or on the lower file"
)

var opInfo = [NumOps]OpInfo{
	OpLookup:        {Families: famPrePost | FamilyAttr | FamilyNames | FamilyData, Node: "name"},
	OpForget:        {Node: "node", Why: "drops the kernel's references to nodes: reaches nothing in the lower tree"},
	OpGetattr:       {Families: famPrePost | FamilyAttr, Answer: "Attr", Node: "node"},
	OpSetattr:       {Families: famPrePost | FamilyAttr, Answer: "-", Node: "node"},
	OpMknod:         {Families: famNodeMade, Node: "name"},
	OpMkdir:         {Families: famNodeMade, Node: "name"},
	OpUnlink:        {Families: famPrePost | FamilyNames, Answer: "-", Node: "name"},
	OpRmdir:         {Families: famPrePost | FamilyNames, Answer: "-", Node: "name"},
	OpRename:        {Families: famPrePost | FamilyNames, Answer: "-", Node: "name"},
	OpLink:          {Families: famNodeMade, Node: "name"},
	OpSymlink:       {Families: famNodeMade, Node: "name"},
	OpReadlink:      {Families: famPrePost, Answer: "Target", Node: "node"},
	OpAccess:        {Families: famPrePost, Answer: "-", Node: "node"},
	OpStatfs:        {Families: famPrePost, Node: "node"},
	OpStatx:         {Families: famPrePost | FamilyAttr, Answer: "Attr", Node: "node"},
	OpGetxattr:      {Families: famPrePost, Answer: "Value", Node: "node"},
	OpListxattr:     {Families: famPrePost, Answer: "Value", Node: "node"},
	OpSetxattr:      {Families: famPrePost, Answer: "-", Node: "node"},
	OpRemovexattr:   {Families: famPrePost, Answer: "-", Node: "node"},
	OpCreate:        {Families: famNodeMade, Node: "name"},
	OpTmpfile:       {Families: famNodeMade, Node: "node"},
	OpOpen:          {Families: famPrePost | FamilyData, Node: "node"},
	OpRead:          {Families: FamilyData, Node: "open", Why: whyStream},
	OpWrite:         {Families: FamilyData, Node: "open", Why: whyStream},
	OpFlush:         {Node: "open", Why: "nothing reaches the lower tree: writes are not buffered in the daemon and POSIX locks are the kernel's"},
	OpFsync:         {Node: "open", Why: "makes durable what the open already wrote; " + whyOpen},
	OpRelease:       {Node: "open", Why: "ends an open"},
	OpLseek:         {Families: FamilyData, Node: "open", Why: "SEEK_DATA and SEEK_HOLE map the file's data: an open served through a stream is shown as data from start to end, others get the lower file's map"},
	OpFallocate:     {Families: FamilyData, Node: "open", Why: "changes file data of an open: refused (EOPNOTSUPP) for an open served through a stream, so that posix_fallocate writes through it; " + whyOpen},
	OpCopyFileRange: {Families: FamilyData, Node: "open", Why: "moves file data between two opens: through their streams when either has one, else inside the lower filesystem"},
	OpOpendir:       {Families: famPrePost, Node: "node"},
	OpReaddir:       {Families: FamilyDir | FamilyNames, Node: "open", Why: "lists an open directory (judged at opendir); each entry gets its view name, the directory filters' verdict and the lookup decision"},
	OpReaddirplus:   {Families: FamilyDir | FamilyNames | FamilyAttr | FamilyData, Node: "open", Why: "as readdir; each entry the kernel learns of passes the lookup decision (pre- and post-filters of lookup) with its attributes"},
	OpReleasedir:    {Node: "open", Why: "ends an open directory"},
	OpFsyncdir:      {Node: "open", Why: "makes durable what is already in the directory; " + whyOpen},
	OpSetlk:         {Node: "open", Why: "a flock on an open; " + whyOpen},
	OpSetlkw:        {Node: "open", Why: "a flock on an open; " + whyOpen},
}

var opNames = [NumOps]string{
	"lookup", "forget", "getattr", "setattr", "mknod", "mkdir", "unlink", "rmdir", "rename", "link",
	"symlink", "readlink", "access", "statfs", "statx", "getxattr", "listxattr", "setxattr", "removexattr",
	"create", "tmpfile", "open", "read", "write", "flush", "fsync", "release", "lseek", "fallocate",
	"copy_file_range", "opendir", "readdir", "readdirplus", "releasedir", "fsyncdir",
	"setlk", "setlkw",
}

// String returns the operation's name, as in policy files.
func (o Op) String() string {
	if o >= NumOps {
		return "unknown"
	}
	return opNames[o]
}

// ParseOp returns the operation of a name.
func ParseOp(name string) (Op, bool) {
	for i, n := range opNames {
		if n == name {
			return Op(i), true
		}
	}
	return 0, false
}

// OpNames lists every operation's name, in order.
func OpNames() []string { return opNames[:] }

// Info returns what the gate knows of the operation.
func (o Op) Info() OpInfo {
	if o >= NumOps {
		return OpInfo{}
	}
	return opInfo[o]
}

// Modifies reports whether the operation can change the tree: names,
// attributes, extended attributes or data. Open and create modify when
// their flags ask for writing; see Request.Modifies.
func (o Op) Modifies() bool {
	switch o {
	case OpSetattr, OpMknod, OpMkdir, OpUnlink, OpRmdir, OpRename, OpLink, OpSymlink,
		OpSetxattr, OpRemovexattr, OpCreate, OpTmpfile, OpWrite, OpFallocate, OpCopyFileRange:
		return true
	}
	return false
}

// Filtered reports whether requests of the operation go through the pre-
// and post-filters (Info().Why says why the others need not).
func (o Op) Filtered() bool { return o.Info().Filtered() }

// OpSet is a set of operations.
type OpSet uint64

// AllOps holds every operation.
const AllOps = OpSet(1)<<NumOps - 1

// Ops returns the set of ops.
func Ops(ops ...Op) OpSet {
	var s OpSet
	for _, o := range ops {
		s |= 1 << o
	}
	return s
}

// Has reports whether o is in the set.
func (s OpSet) Has(o Op) bool { return o < NumOps && s&(1<<o) != 0 }

// ModifyingOps holds the operations that may change the tree (Op.Modifies),
// and open, which does when its flags ask for writing.
var ModifyingOps = func() OpSet {
	s := Ops(OpOpen)
	for o := range NumOps {
		if o.Modifies() {
			s |= Ops(o)
		}
	}
	return s
}()
