package main

// The daemon's log output: whatever its writer does (a closed pipe, a pipe
// nobody reads, a full disk, EIO), logging must neither kill nor stall the
// daemon, since every FUSE request may log (--debug).

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// logBufferSize bounds the log output waiting to be written, in bytes,
	// besides the batch being written.
	logBufferSize = 1 << 20
	// logFlushTimeout is how long the daemon waits at exit for its log
	// output to be written: long enough for any live reader or disk, short
	// enough that a reader that never reads cannot hang the exit.
	logFlushTimeout = 2 * time.Second
)

// logSink is the writer between the daemon's log handlers and its real
// output (stderr, the log file, the readiness tee). Write never blocks on
// the output: it copies the line into a bounded buffer, which one goroutine
// writes out. A line that finds the buffer full is dropped, and so are lines
// the output refuses; both are counted, and once a write succeeds again one
// line (made by the notice function) says how many were lost. Close writes
// out what is buffered, waiting at most until a deadline.
//
// Each Write is taken as one line: log/slog handlers write one record per
// call, as fmt.Fprintf does one message.
type logSink struct {
	w    io.Writer
	done chan struct{} // closed when the draining goroutine has returned

	mu      sync.Mutex
	cond    *sync.Cond // signalled when buf, full or closing change
	buf     []byte     // lines waiting to be written
	full    uint64     // lines dropped for a full buffer, not yet reported
	closing bool
	notice  func(lost uint64) []byte

	dropped atomic.Uint64 // lines lost, in all
}

// newLogSink returns a sink writing to w, and starts its goroutine.
func newLogSink(w io.Writer) *logSink {
	s := &logSink{w: w, done: make(chan struct{}), notice: plainDropNotice}
	s.cond = sync.NewCond(&s.mu)
	go s.drain()
	return s
}

// plainDropNotice is the notice of lines lost, until setNotice is called.
func plainDropNotice(lost uint64) []byte {
	return []byte("sievefs: " + strconv.FormatUint(lost, 10) + " log lines dropped (the log output was full or failing)\n")
}

// setNotice sets the function that makes the line reporting lost lines (so
// that it can match the log format).
func (s *logSink) setNotice(f func(lost uint64) []byte) {
	s.mu.Lock()
	s.notice = f
	s.mu.Unlock()
}

// Write queues p to be written, or drops it if the buffer is full or the
// sink closed. It never fails: a lost log line is not its caller's error.
func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || (len(s.buf) > 0 && len(s.buf)+len(p) > logBufferSize) {
		s.dropped.Add(1)
		if !s.closing {
			s.full++ // the buffer holds lines: the goroutine is not waiting
		}
		return len(p), nil
	}
	s.buf = append(s.buf, p...)
	s.cond.Signal()
	return len(p), nil
}

// Dropped returns how many lines were lost so far.
func (s *logSink) Dropped() uint64 { return s.dropped.Load() }

// drain writes the buffered lines out until Close.
func (s *logSink) drain() {
	defer close(s.done)
	var (
		spare   []byte
		lost    uint64 // lines lost and not yet reported
		midLine bool   // a failed write stopped in the middle of a line
	)
	// report writes the notice of lost lines, if any.
	report := func(notice func(uint64) []byte) {
		if lost == 0 {
			return
		}
		msg := notice(lost)
		if midLine {
			msg = append([]byte{'\n'}, msg...)
		}
		if n, err := s.w.Write(msg); err == nil {
			lost, midLine = 0, false
		} else if n > 0 {
			midLine = msg[n-1] != '\n'
		}
	}
	for {
		s.mu.Lock()
		for len(s.buf) == 0 && s.full == 0 && !s.closing {
			s.cond.Wait()
		}
		batch, full, closing, notice := s.buf, s.full, s.closing, s.notice
		s.buf, s.full = spare[:0], 0
		s.mu.Unlock()

		// Lines lost to failed writes are reported before the lines that
		// follow them; lines dropped for a full buffer came after this batch.
		report(notice)
		if len(batch) > 0 {
			if n, err := s.w.Write(batch); err != nil {
				k := uint64(bytes.Count(batch[n:], []byte{'\n'}))
				lost += k
				s.dropped.Add(k)
				midLine = n > 0 && batch[n-1] != '\n'
			}
		}
		lost += full
		report(notice)
		spare = batch
		if closing && len(batch) == 0 && full == 0 {
			return
		}
	}
}

// errLogTimeout says that the log output did not take what was buffered
// before the deadline.
var errLogTimeout = errors.New("log output not written out before the deadline")

// Close stops taking lines and waits until the buffered ones are written,
// or until deadline. Later writes are dropped.
func (s *logSink) Close(deadline time.Time) error {
	s.mu.Lock()
	s.closing = true
	s.cond.Signal()
	s.mu.Unlock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-s.done:
		return nil
	case <-t.C:
		return errLogTimeout
	}
}
