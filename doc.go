// Package sievefs mounts a view of a directory through FUSE: a policy of
// filters may hide, rename, re-own, protect, audit or rewrite what the view
// shows, and everything it does not change goes to the lower filesystem at
// native speed through the kernel's FUSE passthrough.
//
// # A request's way through the packages
//
//	kernel ─/dev/fuse─▶ go-fuse (fuse.Server) ─▶ fileSystem method (fs_*.go)
//	   ─▶ gate (gate.go): node, caller, chain ─▶ chain.Chain: pre-filters
//	   ─▶ lower.Tree (internal/lower): *at system calls on O_PATH descriptors
//	   ─▶ chain.Chain: post-filters ─▶ reply
//	OPEN/CREATE ─▶ passthrough.Manager: one backing file per inode, or a
//	   daemon-served open (through the data rules' streams when they claim it)
//
// The transport is go-fuse's fuse.Server loop, or (Options.Transport
// "dev", experimental) internal/fuseconn's own loop on the /dev/fuse
// descriptor through go-fuse's fuse.ProtocolServer; handlers reach the
// connection only through the connection interface (transport.go).
// go-fuse decodes the request and calls one fileSystem method per opcode;
// ops.go maps every method onto the operation table (filter.Op.Info). Every
// handler starts at the gate, which makes one request of the node, the
// caller and the chain in force; a mount without a policy has an empty
// chain and tracks no view paths. Only internal/lower touches the lower
// tree; only the root package knows FUSE wire structures; filters see
// neither.
//
// # Consistency: the --cache modes
//
// The kernel caches names, attributes, listings and (daemon-served) file
// data; it asks the daemon again when a timeout runs out or when it is told
// to drop what it holds (FUSE notifications).
//
//   - auto (the default): names and attributes for 1 s; listings and the
//     page cache until the directory's or file's mtime or size is seen to
//     change. A change made beside the mount shows within about a second.
//   - watch: as auto, but the lower tree is watched (fanotify) and names and
//     attributes are cached for an hour, each dropped when it changes; lost
//     events end the watch and the timeouts fall back to 1 s.
//   - always: a day: for a lower tree changed only through the mount.
//   - never: nothing is cached; daemon-served files use direct I/O.
//
// Whatever the mode, answers that depend on the caller (a rule with a
// condition) are never cached, and a policy reload drops every name and
// attribute the kernel holds (invalidateAll). Passthrough data is the lower
// file's page cache: always current.
//
// # What mounting changes in the process
//
// MountView sets the process umask to 0 (the kernel has applied each
// client's umask already) and raises the soft RLIMIT_NOFILE to the hard
// limit. As root it writes the mount's readahead
// (/sys/class/bdi/MAJ:MIN/read_ahead_kb, see raiseReadahead); an Unmount
// that has to abort a connection mounts the FUSE control filesystem on
// /sys/fs/fuse/connections if it is not there. Passthrough backing files
// are registered on a thread without CAP_FSETID for the length of the
// ioctl (setid.go). The library never sets the default slog logger, the
// process's signals or GOMAXPROCS: the command does.
//
// # Metrics
//
// The request path counts with atomics only; Mount.RequestStats and
// Mount.Status read the counters. The package
// github.com/sievefs/sievefs/metrics exports them to Prometheus: only a
// program that imports it links the Prometheus client.
//
// # Lock order
//
// A lock on the left may be held while taking one on its right, never the
// other way round:
//
//	openFile.lockMu ─▶ heldFDs.mu, lower
//	lower: Tree.mu ─▶ fdCache.mu; watcher.mu and watcher.writesMu ─▶ fdCache.mu
//
// passthrough.Manager.mu, dirFDs.mu, handleTable.mu, heldFDs.mu,
// refusedNames.mu and the filters' own locks (the redact cache, the audit
// log registry) are leaves: nothing is taken while they are held. No lock
// is held while a filter runs: a listing's state belongs to the one READDIR
// the kernel lets run on a directory handle at a time, not to a lock. No
// lock is held across a system call that other requests wait on: the
// passthrough manager reserves an inode's place, registers its backing file
// without the lock and commits; a flock that waits holds only its own
// open's lockMu.
//
// # What the kernel guarantees and the code relies on
//
//   - A node ID stays valid until the kernel sends FORGET for all the
//     lookups the daemon's replies counted; the tree never reuses one.
//   - RELEASE and RELEASEDIR come after every request on that handle has
//     been answered: a handle is never removed under a request using it.
//   - READDIR requests on one open directory are serialized (the file's
//     position lock).
//   - With allow_other, default_permissions makes the kernel check each
//     caller's rights against the attributes the daemon presents before it
//     sends a request.
//   - One backing file per FUSE inode, and an inode's opens are all
//     passthrough or all cached (the I/O modes of fs/fuse/iomode.c): data
//     variants (gate.go) are inodes of their own.
//   - Passthrough I/O runs with the credentials the daemon had when it
//     registered the backing file.
//
// See docs/usage.md for the command, docs/operations.md for running it and
// docs/security.md for the threat model.
package sievefs
