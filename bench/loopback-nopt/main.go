// Command loopback-nopt is go-fuse's loopback filesystem with passthrough
// declined: every read and write is served by the daemon. It is the peer of
// "sievefs --passthrough off" in the benchmark (go-fuse's example/loopback
// has no switch for it and uses passthrough when it runs as root).
//
// It mounts fs.NewLoopbackRoot with the options of go-fuse's
// example/loopback as the benchmark runs it (-q -directmountstrict: 1 s
// entry and attribute timeouts, the mount syscall). Only the files it opens
// differ: they decline PassthroughFd.
//
//	loopback-nopt MOUNTPOINT ORIGINAL
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node whose files are served by the daemon.
type node struct{ *fs.LoopbackNode }

// WrapChild makes every child of a node a node too.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{ops.(*fs.LoopbackNode)}
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, errno := n.LoopbackNode.Open(ctx, flags)
	return noPassthrough(fh), fl, errno
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ino, fh, fl, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	return ino, noPassthrough(fh), fl, errno
}

// file is a loopback file that declines passthrough.
type file struct{ *fs.LoopbackFile }

// PassthroughFd declines passthrough for the file.
func (*file) PassthroughFd() (int, bool) { return -1, false }

func noPassthrough(fh fs.FileHandle) fs.FileHandle {
	if lf, ok := fh.(*fs.LoopbackFile); ok {
		return &file{lf}
	}
	return fh
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: loopback-nopt MOUNTPOINT ORIGINAL")
		os.Exit(2)
	}
	mnt, orig := os.Args[1], os.Args[2]
	root, err := fs.NewLoopbackRoot(orig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "NewLoopbackRoot(%s): %v\n", orig, err)
		os.Exit(1)
	}
	lr := root.(*fs.LoopbackNode)
	rootNode := &node{lr}
	lr.RootData.RootNode = rootNode
	sec := time.Second
	server, err := fs.Mount(mnt, rootNode, &fs.Options{
		AttrTimeout:     &sec,
		EntryTimeout:    &sec,
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			DirectMount:       true,
			DirectMountStrict: true,
			FsName:            orig,
			Name:              "loopback",
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "mount: %v\n", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		server.Unmount()
	}()
	server.Wait()
}
