package fuseconn

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/internal/iouring"
)

// FUSE over io_uring (fs/fuse/dev_uring.c, include/uapi/linux/fuse.h):
// after INIT, the daemon registers ring entries on one queue per possible
// CPU, each a header buffer and a payload buffer, with URING_CMD entries on
// the /dev/fuse descriptor. A registration completes when the kernel puts
// a request in the buffers; the daemon answers in the same buffers and
// commits with COMMIT_AND_FETCH, which also waits for the next request.
// FORGETs, INTERRUPTs and notifications stay on the descriptor.
const (
	uringCmdRegister       = 1 // FUSE_IO_URING_CMD_REGISTER
	uringCmdCommitAndFetch = 2 // FUSE_IO_URING_CMD_COMMIT_AND_FETCH

	// struct fuse_uring_req_header: in_out (the request's fuse_in_header,
	// the reply's fuse_out_header), op_in (the request's first argument,
	// its per-op header) and ring_ent_in_out.
	uringInOutSize  = 128
	uringOpInSize   = 128
	uringEntOffset  = uringInOutSize + uringOpInSize
	uringHeaderSize = uringEntOffset + 32
	// uringIovOffset is where an entry's two iovecs sit, in the same page
	// as its header.
	uringIovOffset = 512

	// uringQueueDepth is the number of entries registered on each queue:
	// the requests a queue serves at once.
	uringQueueDepth = 8

	// minReadBuffer is the kernel's FUSE_MIN_READ_BUFFER, the least a
	// payload buffer may hold.
	minReadBuffer = 8192

	// Opcodes of include/uapi/linux/fuse.h served apart (go-fuse keeps its
	// own unexported).
	opWrite         = 16
	opFsync         = 20
	opFlush         = 25
	opFsyncDir      = 30
	opSetLkw        = 33
	opIoctl         = 39
	opPoll          = 40
	opFallocate     = 43
	opCopyFileRange = 47
)

// EnableURingParam is the fuse module's parameter that allows FUSE over
// io_uring ("Y" or "N"; root may write it).
const EnableURingParam = "/sys/module/fuse/parameters/enable_uring"

// ErrURingUnavailable is returned, wrapped, by MountURing when the kernel
// does not carry FUSE over io_uring: too old (before 6.14), built without
// it, or its fuse module's enable_uring parameter is off.
var ErrURingUnavailable = errors.New("FUSE over io_uring unavailable")

// uringEntInOut is struct fuse_uring_ent_in_out.
type uringEntInOut struct {
	Flags     uint64
	CommitID  uint64
	PayloadSz uint32
	Padding   uint32
	Reserved  uint64
}

// uringCmdReq is struct fuse_uring_cmd_req, in an SQE's command area.
type uringCmdReq struct {
	Flags    uint64
	CommitID uint64
	Qid      uint16
	Padding  [6]uint8
}

// ringQueue is one queue: its io_uring, its entries, and the goroutine,
// locked to its own thread, that submits every command and reaps every
// completion.
//
// Only that thread may submit: the kernel hands a request to an entry by
// running work on the thread that submitted the entry's command, when that
// thread next returns from the kernel. A thread that submitted and later
// waits on a FUSE request of the same mount (any goroutine of a Go program
// may run on it) would wait for work only it can run, for ever. So the
// goroutines that serve requests queue their commits and wake the loop
// through an eventfd, which the ring polls.
type ringQueue struct {
	c       *Conn
	qid     uint16
	ring    *iouring.Ring
	ents    []*ringEnt
	live    int // entries registered and not ended; the loop's
	serving sync.WaitGroup
	wake    int // eventfd the ring polls

	mu      sync.Mutex
	commits []*ringEnt // replies ready to commit
}

// pollTag is the user data of the ring's poll on its eventfd.
const pollTag = ^uint64(0)

// ringEnt is one ring entry: a mapping (never moved by the collector)
// holding the header, the iovecs and, a page on, the payload.
type ringEnt struct {
	q        *ringQueue
	idx      uint64
	mem      []byte
	header   []byte
	payload  []byte
	commitID uint64
	lastCmd  uint32
	scratch  []byte // a copy of a request's payload, apart from the reply's
}

// MountURing mounts as Mount does, asks for FUSE over io_uring at INIT
// and registers one queue of ring entries per possible CPU. It fails,
// with ErrURingUnavailable wrapped, where the kernel does not offer it;
// nothing is left mounted then.
func MountURing(mountpoint string, fs fuse.RawFileSystem, opts *fuse.MountOptions) (*Conn, error) {
	if b, err := os.ReadFile(EnableURingParam); err != nil {
		return nil, fmt.Errorf("%w: %v (kernel 6.14 or later built with CONFIG_FUSE_IO_URING needed)", ErrURingUnavailable, err)
	} else if strings.TrimSpace(string(b)) != "Y" {
		return nil, fmt.Errorf("%w: %s is %s (root may write Y to it)", ErrURingUnavailable, EnableURingParam, strings.TrimSpace(string(b)))
	}
	o := *opts
	o.ExtraCapabilities |= fuse.CAP_OVER_IO_URING
	c, err := Mount(mountpoint, fs, &o)
	if err != nil {
		return nil, err
	}
	if err := c.startRings(); err != nil {
		// The loops of the queues registered end once the connection
		// does, and then the rings can go.
		c.unmount(true)
		c.file.Close()
		c.ringsOver.Store(true)
		close(c.serving)
		c.ringLoops.Wait()
		c.freeRings()
		return nil, err
	}
	return c, nil
}

// startRings registers the ring entries of every queue, once INIT is
// answered.
func (c *Conn) startRings() error {
	if c.flags&fuse.CAP_OVER_IO_URING == 0 {
		return fmt.Errorf("%w: the kernel did not offer it at INIT", ErrURingUnavailable)
	}
	queues, err := possibleCPUs()
	if err != nil {
		return err
	}
	// The descriptor stays open until the rings are freed (see Serve).
	c.ringFd = int(c.file.Fd())
	// The kernel wants room for max_write and for max_pages pages.
	payloadSize := max(int(c.maxWrite), int(c.maxPages)*os.Getpagesize(), minReadBuffer)
	for qid := range queues {
		q := &ringQueue{c: c, qid: uint16(qid), wake: -1}
		c.rings = append(c.rings, q)
		if q.ring, err = iouring.New(2 * uringQueueDepth); err != nil {
			return fmt.Errorf("%w: queue %d: %v", ErrURingUnavailable, qid, err)
		}
		if q.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
			return fmt.Errorf("queue %d: eventfd: %w", qid, err)
		}
		for i := range uringQueueDepth {
			e, err := newRingEnt(q, uint64(i), payloadSize)
			if err != nil {
				return err
			}
			q.ents = append(q.ents, e)
		}
		registered := make(chan error)
		c.ringLoops.Add(1)
		go q.loop(registered)
		if err := <-registered; err != nil {
			return err
		}
	}
	return nil
}

// possibleCPUs returns the number of possible CPUs, the kernel's number of
// queues (/sys/devices/system/cpu/possible: "0-3", or "0").
func possibleCPUs() (int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return 0, fmt.Errorf("possible CPUs: %w", err)
	}
	s := strings.TrimSpace(string(b))
	n := 0
	for _, r := range strings.Split(s, ",") {
		lo, hi, _ := strings.Cut(r, "-")
		if hi == "" {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		z, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || z < a {
			return 0, fmt.Errorf("possible CPUs: cannot parse %q", s)
		}
		n = max(n, z+1)
	}
	return n, nil
}

// newRingEnt maps the buffers of an entry with payloadSize bytes of
// payload.
func newRingEnt(q *ringQueue, idx uint64, payloadSize int) (*ringEnt, error) {
	page := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, page+payloadSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("map a ring entry: %w", err)
	}
	e := &ringEnt{q: q, idx: idx, mem: mem, header: mem[:uringHeaderSize], payload: mem[page:]}
	iov := (*[2]unix.Iovec)(unsafe.Pointer(&mem[uringIovOffset]))
	iov[0].Base = &e.header[0]
	iov[0].SetLen(len(e.header))
	iov[1].Base = &e.payload[0]
	iov[1].SetLen(len(e.payload))
	return e, nil
}

// queue queues the entry's command cmd (REGISTER, or COMMIT_AND_FETCH of
// its request) on its queue's ring.
func (e *ringEnt) queue(cmd uint32) error {
	e.lastCmd = cmd
	return e.q.ring.Queue(func(s *iouring.SQE) {
		s.Opcode = iouring.OpURingCmd
		s.Fd = int32(e.q.c.ringFd)
		s.CmdOp = cmd
		s.UserData = e.idx
		req := (*uringCmdReq)(unsafe.Pointer(&s.Cmd[0]))
		req.Qid = e.q.qid
		if cmd == uringCmdRegister {
			s.Addr = uint64(uintptr(unsafe.Pointer(&e.mem[uringIovOffset])))
			s.Len = 2
		} else {
			req.CommitID = e.commitID
		}
	})
}

// loop registers the queue's entries, from the thread it locks (see
// ringQueue), and tells registered how that went; it then serves the
// queue's requests, once Serve starts, until all its entries have ended
// (the connection is over). The thread ends with it.
func (q *ringQueue) loop(registered chan<- error) {
	defer q.c.ringLoops.Done()
	runtime.LockOSThread()
	cqes, err := q.register()
	registered <- err
	if err != nil {
		return
	}
	<-q.c.serving
	// The kernel gives back no entry when the connection ends: the loop
	// stops when Serve says it is over, and closing the ring cancels the
	// entries.
	for q.live > 0 && !q.c.ringsOver.Load() {
		for _, cqe := range cqes {
			q.complete(cqe)
		}
		q.mu.Lock()
		commits := q.commits
		q.commits = nil
		q.mu.Unlock()
		for _, e := range commits {
			if err := e.queue(uringCmdCommitAndFetch); err != nil {
				q.c.logger.Printf("fuseconn: io_uring queue %d: commit: %v", q.qid, err)
				q.live--
			}
		}
		if err := q.ring.Submit(); err != nil {
			q.c.logger.Printf("fuseconn: io_uring queue %d: %v", q.qid, err)
			break
		}
		if cqes, err = q.ring.Wait(1, cqes[:0]); err != nil {
			q.c.logger.Printf("fuseconn: io_uring queue %d: %v", q.qid, err)
			break
		}
	}
	q.serving.Wait()
}

// register submits the REGISTER of every entry and the poll of the
// eventfd, and returns the completions already there: a refused
// registration completes at once.
func (q *ringQueue) register() ([]iouring.CQE, error) {
	for _, e := range q.ents {
		if err := e.queue(uringCmdRegister); err != nil {
			return nil, fmt.Errorf("queue %d: %w", q.qid, err)
		}
	}
	if err := q.pollWake(); err != nil {
		return nil, err
	}
	if err := q.ring.Submit(); err != nil {
		return nil, fmt.Errorf("queue %d: register: %w", q.qid, err)
	}
	q.live = len(q.ents)
	cqes, err := q.ring.Wait(0, nil)
	if err != nil {
		return nil, fmt.Errorf("queue %d: %w", q.qid, err)
	}
	for _, cqe := range cqes {
		if cqe.UserData != pollTag && cqe.Res < 0 {
			return nil, fmt.Errorf("%w: register queue %d: %v", ErrURingUnavailable, q.qid, syscall.Errno(-cqe.Res))
		}
	}
	return cqes, nil
}

// pollWake queues a poll of the eventfd that wakes the loop.
func (q *ringQueue) pollWake() error {
	err := q.ring.Queue(func(s *iouring.SQE) {
		s.Opcode = iouring.OpPollAdd
		s.Fd = int32(q.wake)
		s.OpFlags = unix.POLLIN
		s.UserData = pollTag
	})
	if err != nil {
		return fmt.Errorf("queue %d: poll: %w", q.qid, err)
	}
	return nil
}

// commit hands the entry's reply to the loop, which commits it; wake
// wakes the loop, from a goroutine other than the loop's.
func (q *ringQueue) commit(e *ringEnt, wake bool) {
	q.mu.Lock()
	q.commits = append(q.commits, e)
	q.mu.Unlock()
	if wake {
		q.wakeUp()
	}
}

// stopRings makes the queues' loops end, once the connection is over.
func (c *Conn) stopRings() {
	c.ringsOver.Store(true)
	for _, q := range c.rings {
		q.wakeUp()
	}
}

// wakeUp wakes the queue's loop.
func (q *ringQueue) wakeUp() {
	one := [8]byte{1}
	if _, err := unix.Write(q.wake, one[:]); err != nil && err != unix.EAGAIN {
		q.c.logger.Printf("fuseconn: io_uring queue %d: wake: %v", q.qid, err)
	}
}

// complete acts on a completion of one of the queue's entries: a request
// to serve, a command to submit again, or the entry's end.
func (q *ringQueue) complete(cqe iouring.CQE) {
	if cqe.UserData == pollTag {
		var b [8]byte
		unix.Read(q.wake, b[:])
		if err := q.pollWake(); err != nil {
			q.c.logger.Printf("fuseconn: io_uring %v", err)
		}
		return
	}
	e := q.ents[cqe.UserData]
	switch errno := syscall.Errno(-cqe.Res); {
	case cqe.Res == 0 && mayWait(e.opcode()):
		q.serving.Add(1)
		go func() {
			defer q.serving.Done()
			e.serve()
			q.commit(e, true)
		}()
	case cqe.Res == 0:
		e.serve()
		q.commit(e, false)
	case errno == unix.EINTR || errno == unix.EAGAIN:
		if err := e.queue(e.lastCmd); err != nil {
			q.c.logger.Printf("fuseconn: io_uring queue %d entry %d: submit again: %v", q.qid, e.idx, err)
			q.live--
		}
	default:
		// ENOTCONN or ECONNABORTED: the connection is over.
		if errno != unix.ENOTCONN && errno != unix.ECONNABORTED {
			q.c.logger.Printf("fuseconn: io_uring queue %d entry %d: %v", q.qid, e.idx, errno)
		}
		q.live--
	}
}

// opcode returns the opcode of the request in the entry's buffers.
func (e *ringEnt) opcode() uint32 {
	return (*fuse.InHeader)(unsafe.Pointer(&e.header[0])).Opcode
}

// mayWait reports whether a request with opcode may wait long in the file
// system: a lock that waits for another client to unlock (which may need
// a request of this very queue served meanwhile), a sync, a flush or an
// allocation that waits for storage. Those are served by a goroutine of
// their own; the rest inline, on the queue's thread: handing each request
// to a goroutine made a request four times as slow (the loop's thread
// holds the processor while it waits in the kernel, and the goroutine
// waits for the runtime to take it back).
func mayWait(opcode uint32) bool {
	switch opcode {
	case opSetLkw, opFsync, opFsyncDir, opFlush, opFallocate, opCopyFileRange, opIoctl, opPoll:
		return true
	}
	return false
}

// RingRequests returns the number of requests served through io_uring
// (MountURing) so far.
func (c *Conn) RingRequests() uint64 { return c.ringServed.Load() }

// serve answers the request in the entry's buffers through the protocol
// server; the reply, in the same buffers, is then committed.
func (e *ringEnt) serve() {
	e.q.c.ringServed.Add(1)
	ent := (*uringEntInOut)(unsafe.Pointer(&e.header[uringEntOffset]))
	e.commitID = ent.CommitID
	inHdr := (*fuse.InHeader)(unsafe.Pointer(&e.header[0]))
	unique := inHdr.Unique
	hdrSize := int(unsafe.Sizeof(fuse.InHeader{}))
	payloadSize := int(ent.PayloadSz)
	// The header's length counts the whole request, as on /dev/fuse: what
	// is neither header nor payload is the per-op header in op_in.
	opSize := int(inHdr.Length) - hdrSize - payloadSize
	n := 0
	if opSize < 0 || opSize > uringOpInSize || payloadSize > len(e.payload) {
		e.q.c.logger.Printf("fuseconn: io_uring request %d: length %d, payload %d: malformed", unique, inHdr.Length, payloadSize)
	} else {
		payload := e.payload[:payloadSize]
		if inHdr.Opcode != opWrite {
			// The reply is written into the same payload buffer,
			// perhaps while the request's payload is read (GETXATTR
			// reads a name and writes a value): copy it apart. A
			// WRITE's data, the large one, is read before its reply.
			e.scratch = append(e.scratch[:0], payload...)
			payload = e.scratch
		}
		in := [][]byte{e.header[:hdrSize], e.header[uringInOutSize : uringInOutSize+opSize], payload}
		outHdr := int(unsafe.Sizeof(fuse.OutHeader{}))
		var st fuse.Status
		n, st = e.q.c.ps.HandleRequest(in, [][]byte{e.header[:outHdr], e.payload})
		if !st.Ok() {
			n = 0
		}
	}
	outSize := int(unsafe.Sizeof(fuse.OutHeader{}))
	if n < outSize {
		// Every ring request needs a reply to give the entry back.
		*(*fuse.OutHeader)(unsafe.Pointer(&e.header[0])) = fuse.OutHeader{Length: uint32(outSize), Status: -int32(unix.EIO), Unique: unique}
		n = outSize
	}
	ent.PayloadSz = uint32(n - outSize)
}

// freeRings closes the rings and unmaps the entries' buffers, once the
// kernel is done with them (their entries ended, or the connection
// aborted).
func (c *Conn) freeRings() {
	for _, q := range c.rings {
		if q.ring != nil {
			if err := q.ring.Close(); err != nil {
				c.logger.Printf("fuseconn: %v", err)
			}
		}
		for _, e := range q.ents {
			unix.Munmap(e.mem)
		}
		if q.wake >= 0 {
			unix.Close(q.wake)
		}
	}
	c.rings = nil
}
