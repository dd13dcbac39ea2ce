package sievefs

import (
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
)

// op is the operation a request is counted under.
type op = filter.Op

const numOps = filter.NumOps

// latencyBounds are the upper bounds of the latency histogram.
var latencyBounds = [...]time.Duration{
	5 * time.Microsecond, 10 * time.Microsecond, 25 * time.Microsecond, 50 * time.Microsecond,
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 5 * time.Millisecond, 25 * time.Millisecond, 100 * time.Millisecond, time.Second,
}

// opStats counts requests, errors and latencies with atomics only, so that
// the request path never takes a lock or calls into a metrics library;
// RequestStats reads them (for the Prometheus collector of package metrics,
// at scrape time).
type opStats struct {
	requests [numOps]atomic.Uint64
	errors   [numOps]atomic.Uint64
	nanos    [numOps]atomic.Uint64
	buckets  [numOps][len(latencyBounds)]atomic.Uint64
	errnos   [256]atomic.Uint64
}

// track records one finished request on the node ID node (and name in it,
// for an operation on a name); handlers call it deferred:
//
//	defer fs.track(filter.OpLookup, h.NodeId, name, time.Now(), &code)
func (fs *fileSystem) track(o op, node uint64, name string, start time.Time, code *fuse.Status) {
	d := time.Since(start)
	s := &fs.stats
	s.requests[o].Add(1)
	s.nanos[o].Add(uint64(d))
	for i, b := range latencyBounds {
		if d <= b {
			s.buckets[o][i].Add(1)
			break
		}
	}
	if *code != fuse.OK {
		s.errors[o].Add(1)
		if e := int(*code); e > 0 && e < len(s.errnos) {
			s.errnos[e].Add(1)
		}
	}
	if fs.opts.Debug {
		fs.logRequest(o, node, name, d, *code)
	}
}

// trackNoStatus records a request that has no reply status (forget, release).
func (fs *fileSystem) trackNoStatus(o op, node uint64, name string, start time.Time) {
	ok := fuse.OK
	fs.track(o, node, name, start, &ok)
}

// logRequest writes the debug line of a finished request: the operation,
// the view path it named (a mount with Options.Debug tracks view paths),
// its result and how long the daemon took, as a person reads them.
func (fs *fileSystem) logRequest(o op, node uint64, name string, d time.Duration, code fuse.Status) {
	path := "?" // a node the kernel has already forgotten
	base, _ := splitNodeID(node)
	if ino := fs.tree.Get(base); ino != nil {
		if p, ok := fs.tree.ViewPath(ino); ok {
			path = "/" + p
		}
	}
	if name != "" {
		path = strings.TrimSuffix(path, "/") + "/" + name
	}
	result := "ok"
	if code != fuse.OK {
		result = errnoLabel(syscall.Errno(code))
	}
	fs.log.Debug("request", "op", o.String(), "path", path, "result", result, "duration", d.Round(100*time.Nanosecond).String())
}

// Requests returns how many requests of the named operation the daemon has
// served.
func (m *Mount) Requests(opName string) uint64 {
	n, _ := m.RequestTime(opName)
	return n
}

// RequestTime returns how many requests of the named operation the daemon
// has served and the time it spent on them (from receiving each to
// answering it, not counting the trip through the kernel).
func (m *Mount) RequestTime(opName string) (uint64, time.Duration) {
	if o, ok := filter.ParseOp(opName); ok {
		return m.fs.stats.requests[o].Load(), time.Duration(m.fs.stats.nanos[o].Load())
	}
	return 0, 0
}

// RequestStats is what the daemon has counted of the requests it served
// since the mount began: the numbers behind the request metrics.
type RequestStats struct {
	// Ops has one entry per operation that has served at least one
	// request, in the order of filter.Op.
	Ops []OpStats
	// Errnos counts the error replies by errno, named as C names it
	// ("ENOENT"), or by its number for one without a name.
	Errnos map[string]uint64
}

// OpStats is what the daemon has counted of one operation's requests.
type OpStats struct {
	Op       filter.Op
	Requests uint64        // requests served
	Errors   uint64        // of those, how many were answered with an error
	Time     time.Duration // the time spent on them, as RequestTime says
	// Latency is a cumulative histogram of the time spent per request:
	// each bucket counts the requests that took at most its bound. A
	// request slower than the last bound is counted in Requests only.
	Latency []LatencyBucket
}

// LatencyBucket is one bucket of OpStats.Latency.
type LatencyBucket struct {
	UpTo     time.Duration // the bucket's upper bound
	Requests uint64        // requests that took at most UpTo
}

// RequestStats returns a snapshot of the request counters. The counters
// are read one by one while requests go on, so two numbers of a snapshot
// may disagree by the requests that finished in between.
func (m *Mount) RequestStats() RequestStats {
	s := &m.fs.stats
	var out RequestStats
	for o := range numOps {
		n := s.requests[o].Load()
		if n == 0 {
			continue
		}
		st := OpStats{Op: o, Requests: n, Errors: s.errors[o].Load(), Time: time.Duration(s.nanos[o].Load()),
			Latency: make([]LatencyBucket, len(latencyBounds))}
		var cum uint64
		for i, b := range latencyBounds {
			cum += s.buckets[o][i].Load()
			st.Latency[i] = LatencyBucket{UpTo: b, Requests: cum}
		}
		out.Ops = append(out.Ops, st)
	}
	out.Errnos = map[string]uint64{}
	for e := range s.errnos {
		if n := s.errnos[e].Load(); n > 0 {
			out.Errnos[errnoLabel(syscall.Errno(e))] = n
		}
	}
	return out
}

// errnoLabel names an errno as C does ("ENOENT"), the number for one
// without a name.
func errnoLabel(e syscall.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return strconv.Itoa(int(e))
}
