package fuseconn

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Serve serves requests until the kernel ends the connection (unmount or
// abort), then waits for the requests under way, closes the descriptor and
// calls the file system's OnUnmount. With FUSE over io_uring (MountURing)
// it serves each queue's ring as well, and frees the rings at the end.
//
// The loop is go-fuse's: a reader blocked in read(2) that gets a request
// starts another reader if none is left waiting, then serves the request
// itself and replies; after the reply it reads again, unless maxReaders are
// waiting already. So a request that blocks (a lock that waits) never stops
// the others, and an idle connection keeps at most maxReaders threads.
// FORGETs, which the kernel sends without waiting and which need no reply,
// start no reader, so that a flood of them cannot multiply the readers.
//
// Each reader holds a request buffer of max_write plus a page while it
// lives; a reply takes a buffer of the same size for the length of the
// request. Both come from one pool: readers come and go with every burst
// of requests, and a new 1 MiB buffer for each (zeroed by the runtime) made
// a request six times as slow as through go-fuse's loop.
func (c *Conn) Serve() {
	close(c.serving)
	c.readers.Add(1)
	go c.reader()
	c.readers.Wait()
	c.stopRings()
	c.ringLoops.Wait()
	c.freeRings()
	if err := c.file.Close(); err != nil {
		c.logger.Printf("fuseconn: close /dev/fuse: %v", err)
	}
	c.fs.OnUnmount()
}

// reader is one goroutine of the loop (see Serve).
func (c *Conn) reader() {
	defer c.readers.Done()
	buf := c.getBuf()
	defer c.bufs.Put(buf)
	in := *buf
	for {
		c.mu.Lock()
		if c.idle >= c.maxReaders {
			c.mu.Unlock()
			return
		}
		c.idle++
		c.mu.Unlock()
		n, err := c.read(in)
		c.mu.Lock()
		c.idle--
		spawn := err == nil && c.idle == 0 && !isForget(in[:n])
		c.mu.Unlock()
		switch {
		case err == nil:
		case errors.Is(err, unix.ENOENT):
			// The request was interrupted before it could be read.
			continue
		case errors.Is(err, unix.ENODEV):
			// Unmounted or aborted: the connection is over.
			return
		default:
			c.logger.Printf("fuseconn: read /dev/fuse: %v", err)
			return
		}
		if spawn {
			c.readers.Add(1)
			go c.reader()
		}
		c.serve(in[:n])
	}
}

// isForget reports whether the request in is a FORGET or BATCH_FORGET.
func isForget(in []byte) bool {
	if len(in) < int(unsafe.Sizeof(fuse.InHeader{})) {
		return false
	}
	op := (*fuse.InHeader)(unsafe.Pointer(&in[0])).Opcode
	return op == opForget || op == opBatchForget
}

// serve answers one request through the protocol server and writes its
// reply, if it has one.
func (c *Conn) serve(in []byte) {
	out := c.getBuf()
	defer c.bufs.Put(out)
	n, st := c.ps.HandleRequest([][]byte{in}, [][]byte{*out})
	if !st.Ok() {
		// A request the protocol server could not parse (it logged why):
		// nothing can be answered.
		return
	}
	if n == 0 {
		return // FORGET, an INTERRUPT that found its request
	}
	err := c.write((*out)[:n])
	switch {
	case err == nil:
	case errors.Is(err, unix.ENOENT):
		// The kernel no longer waits for the request: it was interrupted
		// (its caller went away), or it was a RELEASE on a connection
		// being unmounted.
	case errors.Is(err, unix.ENODEV):
		// The connection is over; the readers stop.
	default:
		c.logger.Printf("fuseconn: write reply: %v", err)
	}
}

// getBuf returns a request or reply buffer from the pool.
func (c *Conn) getBuf() *[]byte { return c.bufs.Get().(*[]byte) }

// read reads one request into buf.
func (c *Conn) read(buf []byte) (int, error) {
	var n int
	err := c.control(func(fd int) error {
		var err error
		n, err = unix.Read(fd, buf)
		// EAGAIN would come only on a non-blocking descriptor; this one is
		// blocking, so it is read again like EINTR.
		if err == unix.EAGAIN {
			err = unix.EINTR
		}
		return err
	})
	return n, err
}

// write writes one reply or notification with one write(2): the kernel
// takes each message whole.
func (c *Conn) write(msg []byte) error {
	return c.control(func(fd int) error {
		_, err := unix.Write(fd, msg)
		return err
	})
}

// control runs the system call f on the descriptor, again on EINTR,
// holding a reference on it so that it is not closed under f.
func (c *Conn) control(f func(fd int) error) error {
	var err error
	if cerr := c.raw.Control(func(fd uintptr) {
		err = retry(func() error { return f(int(fd)) })
	}); cerr != nil {
		return fmt.Errorf("fuse descriptor: %w", cerr)
	}
	return err
}
