// Package systest holds the system tests of sievefs: tests of a mounted
// view as a whole, seen from outside through system calls and the sievefs
// command. Crash and restart of the daemon (crash), random file
// operations compared with a native filesystem (fsx, FuzzOps), memory per
// inode, a big tree, the safety of the lower tree, outside changes seen
// through the mount (watch), the POSIX suite, mounts by ordinary users,
// the attacks of docs/security.md, operations and locks posixtest does not
// reach, and rules on a mount with their cost (filter_chain,
// BenchmarkFilterRules). The package has no code of its own, only tests;
// their shared helpers are in internal/fusetest, and the tests of one
// built-in filter live beside it in filter/<name>.
//
// Run them with
//
//	go test -race -count=1 ./systest/
//
// as root with /dev/fuse; without them they skip.
package systest
