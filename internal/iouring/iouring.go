// Package iouring is the part of Linux's io_uring that sievefs needs to
// carry FUSE over io_uring: a ring set up with 128-byte submission entries
// (IORING_SETUP_SQE128), its rings and entries mapped into the process,
// submission of IORING_OP_URING_CMD entries and the reaping of completions.
// No maintained Go io_uring library supports URING_CMD with SQE128, and
// what is needed here is a few system calls.
//
// The rings are shared with the kernel: the heads and tails are read and
// written with atomic operations (the kernel reads the submission tail and
// writes the completion tail with acquire/release ordering, Go's atomics
// are sequentially consistent). A Ring's submission side is guarded by its
// own lock; one goroutine at a time may reap completions.
package iouring

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Constants of include/uapi/linux/io_uring.h.
const (
	setupSQE128    = 1 << 10 // IORING_SETUP_SQE128
	featSingleMmap = 1 << 0  // IORING_FEAT_SINGLE_MMAP
	offSQRing      = 0       // IORING_OFF_SQ_RING
	offCQRing      = 0x8000000
	offSQEs        = 0x10000000 // IORING_OFF_SQES
	enterGetEvents = 1 << 0     // IORING_ENTER_GETEVENTS
	sqeSize        = 128        // with IORING_SETUP_SQE128
	cqeSize        = 16
	OpNop          = 0  // IORING_OP_NOP
	OpPollAdd      = 6  // IORING_OP_POLL_ADD (events in OpFlags)
	OpURingCmd     = 46 // IORING_OP_URING_CMD
	CmdAreaSize    = 80 // the command area of a 128-byte SQE
	cmdAreaOffset  = 48
	cmdOpOffset    = 8
)

// params is struct io_uring_params.
type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// sqringOffsets is struct io_sqring_offsets.
type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

// cqringOffsets is struct io_cqring_offsets.
type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// SQE is a 128-byte submission queue entry (struct io_uring_sqe with
// IORING_SETUP_SQE128). Only the fields URING_CMD and NOP use are named.
type SQE struct {
	Opcode   uint8
	Flags    uint8
	Ioprio   uint16
	Fd       int32
	CmdOp    uint32 // off's low half: cmd_op for URING_CMD
	pad1     uint32
	Addr     uint64
	Len      uint32
	OpFlags  uint32
	UserData uint64
	bufIndex uint16
	pers     uint16
	fileIdx  uint32
	Cmd      [CmdAreaSize]byte // addr3, __pad2 and the SQE128 extension
}

// CQE is a completion queue entry (struct io_uring_cqe).
type CQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

func init() {
	if unsafe.Sizeof(SQE{}) != sqeSize || unsafe.Offsetof(SQE{}.Cmd) != cmdAreaOffset ||
		unsafe.Offsetof(SQE{}.CmdOp) != cmdOpOffset || unsafe.Sizeof(CQE{}) != cqeSize ||
		unsafe.Sizeof(params{}) != 120 {
		panic("iouring: wire struct layout")
	}
}

// Ring is an io_uring instance with 128-byte submission entries.
type Ring struct {
	fd      int
	ringMem []byte // the submission and completion rings (one mapping)
	sqeMem  []byte // the submission entries
	sqHead  *uint32
	sqTail  *uint32
	sqMask  uint32
	sqArray []uint32
	cqHead  *uint32
	cqTail  *uint32
	cqMask  uint32
	cqes    []CQE
	sqes    []SQE
	mu      sync.Mutex // guards the submission side: the SQEs and sqTail
	pending uint32     // entries queued but not yet submitted, under mu
	closed  bool
}

// New sets up a ring of entries submission entries (a power of two) of
// 128 bytes each.
func New(entries uint32) (*Ring, error) {
	p := params{flags: setupSQE128}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r := &Ring{fd: int(fd)}
	if p.features&featSingleMmap == 0 {
		r.Close()
		return nil, fmt.Errorf("io_uring_setup: kernel lacks IORING_FEAT_SINGLE_MMAP")
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*cqeSize)
	var err error
	if r.ringMem, err = unix.Mmap(r.fd, offSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		r.Close()
		return nil, fmt.Errorf("mmap io_uring rings: %w", err)
	}
	if r.sqeMem, err = unix.Mmap(r.fd, offSQEs, int(p.sqEntries)*sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		r.Close()
		return nil, fmt.Errorf("mmap io_uring entries: %w", err)
	}
	at := func(off uint32) unsafe.Pointer { return unsafe.Pointer(&r.ringMem[off]) }
	r.sqHead = (*uint32)(at(p.sqOff.head))
	r.sqTail = (*uint32)(at(p.sqOff.tail))
	r.sqMask = *(*uint32)(at(p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(at(p.sqOff.array)), p.sqEntries)
	r.cqHead = (*uint32)(at(p.cqOff.head))
	r.cqTail = (*uint32)(at(p.cqOff.tail))
	r.cqMask = *(*uint32)(at(p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*CQE)(at(p.cqOff.cqes)), p.cqEntries)
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	return r, nil
}

// Queue fills a free submission entry with fill and queues it; Submit
// hands it to the kernel. It fails when the submission ring is full.
func (r *Ring) Queue(fill func(*SQE)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return unix.EBADF
	}
	tail := atomic.LoadUint32(r.sqTail)
	if tail-atomic.LoadUint32(r.sqHead) >= uint32(len(r.sqes)) {
		return fmt.Errorf("io_uring submission ring full")
	}
	i := tail & r.sqMask
	sqe := &r.sqes[i]
	*sqe = SQE{}
	fill(sqe)
	r.sqArray[i] = i
	atomic.StoreUint32(r.sqTail, tail+1)
	r.pending++
	return nil
}

// Submit hands the queued entries to the kernel.
func (r *Ring) Submit() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.pending > 0 && !r.closed {
		n, err := r.enter(r.pending, 0, 0)
		if err != nil {
			return fmt.Errorf("io_uring_enter: %w", err)
		}
		r.pending -= n
	}
	return nil
}

// Wait blocks until at least minComplete completions are ready (0: runs the
// kernel's pending work and returns at once), then returns the completions
// ready, copied, and consumes them. Only one goroutine may Wait at a time.
func (r *Ring) Wait(minComplete uint32, cqes []CQE) ([]CQE, error) {
	if r.ready() >= minComplete {
		minComplete = 0
	}
	if minComplete > 0 || r.ready() == 0 {
		if _, err := r.enter(0, minComplete, enterGetEvents); err != nil {
			return cqes, fmt.Errorf("io_uring_enter: %w", err)
		}
	}
	head := atomic.LoadUint32(r.cqHead)
	tail := atomic.LoadUint32(r.cqTail)
	for ; head != tail; head++ {
		cqes = append(cqes, r.cqes[head&r.cqMask])
	}
	atomic.StoreUint32(r.cqHead, head)
	return cqes, nil
}

// ready returns the number of completions ready to be reaped.
func (r *Ring) ready() uint32 {
	return atomic.LoadUint32(r.cqTail) - atomic.LoadUint32(r.cqHead)
}

// enter calls io_uring_enter, again on EINTR, and returns the number of
// entries the kernel consumed.
func (r *Ring) enter(toSubmit, minComplete uint32, flags uintptr) (uint32, error) {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(minComplete), flags, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return uint32(n), nil
	}
}

// Close unmaps the rings and closes the ring's descriptor; the kernel
// cancels what is still submitted. Nothing may use the ring after it.
func (r *Ring) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
		r.sqeMem = nil
	}
	if r.ringMem != nil {
		unix.Munmap(r.ringMem)
		r.ringMem = nil
	}
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	if err != nil {
		return fmt.Errorf("close io_uring: %w", err)
	}
	return nil
}
