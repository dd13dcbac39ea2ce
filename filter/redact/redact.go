package redact

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"syscall"

	"github.com/sievefs/sievefs/filter"
)

// Fields are the kinds of metadata the filter can redact.
var Fields = []string{"gps"}

// Filter shows the files under its paths, to the callers its rule applies
// to, with the values of their EXIF GPS tags zeroed (see GPSRanges): in
// JPEGs (every Exif APP1 segment before the start of scan) and TIFF-based
// images (TIFF, BigTIFF, DNG, ORF, RW2), the GPS IFDs that IFD0, its
// chain, SubIFDs, the Exif IFD or the Interop IFD point to. The size and
// every other byte are unchanged.
//
// It claims every regular file under its paths for those callers, whatever
// the file holds: all their opens are served through the filter, and it
// decides at each read, on the file as it is then. An empty file reads
// empty; a file that parses as such an image within the parser's bounds
// reads redacted; every read of anything else (not such an image,
// malformed, truncated, over a bound, or changing too fast to read
// consistently) fails with EIO. A covered file is never served raw.
// Everyone else keeps passthrough.
//
// Those callers' writes go to the lower file as they are, but for those
// that would change the bytes a parse depends on: a JPEG's segments before
// its start of scan, any byte already in a TIFF-based file or in a file
// that does not parse (appends are fine, and so is anything written to an
// empty file). With such a write a caller could relabel its GPS values
// (change a tag, a count, a pointer) in a file that still parses, and read
// them back unredacted; the write fails with EPERM instead. For the same
// reason they cannot truncate a claimed file but to size 0 (EPERM), which
// takes everything with it. They cannot rename or link files out of the
// paths.
//
// Parse results are kept per file version (see filter.Version) in a cache
// shared by all opens, of at most cacheSize files.
type Filter struct {
	filter.PathScope
	fields []string
	cache  *cache
	parses atomic.Uint64
}

var (
	_ filter.DataFilter  = (*Filter)(nil)
	_ filter.PreFilter   = (*Filter)(nil)
	_ filter.Scoped      = (*Filter)(nil)
	_ filter.ScopedBelow = (*Filter)(nil)
	_ filter.OpScoped    = (*Filter)(nil)
)

// New returns a filter redacting fields (only "gps" exists) under paths.
func New(paths filter.Patterns, fields []string) (*Filter, error) {
	if len(fields) == 0 {
		return nil, fmt.Errorf("redact: no fields (want gps)")
	}
	for _, f := range fields {
		if f != "gps" {
			return nil, fmt.Errorf("redact: unknown field %q (want gps)", f)
		}
	}
	return &Filter{PathScope: filter.ScopeOf(paths), fields: fields, cache: newCache()}, nil
}

// Kind returns "redact".
func (f *Filter) Kind() string { return "redact" }

// Fieldnames returns the fields redacted.
func (f *Filter) Fieldnames() []string { return f.fields }

// Claims reports whether the file is under the paths, whatever it holds.
func (f *Filter) Claims(r *filter.Request) bool { return f.Covers(r.Path) }

// Sees returns the operations Pre judges.
func (f *Filter) Sees() filter.OpSet {
	return filter.Ops(filter.OpRename, filter.OpLink, filter.OpSetattr)
}

// Pre keeps the callers the rule applies to from taking files out of its
// reach by renaming or linking them elsewhere (EXDEV: mv(1) then copies the
// redacted bytes), and from truncating a claimed file to anything but
// size 0 (EPERM: a file cut before its GPS IFD and extended again could
// carry a GPS IFD of the caller's own that no longer covers the values).
func (f *Filter) Pre(r *filter.Request) error {
	switch r.Op {
	case filter.OpRename, filter.OpLink:
		if f.Paths().Escapes(r.Path, r.NewPath, r.Type == syscall.S_IFDIR) {
			return syscall.EXDEV
		}
	case filter.OpSetattr:
		if r.SetAttr.Size && r.SetAttr.SizeValue != 0 && r.Type == syscall.S_IFREG && f.Covers(r.Path) {
			return syscall.EPERM
		}
	}
	return nil
}

// Stats is what a Filter has done and holds.
type Stats struct {
	Parses uint64 // parses made since New
	Cached int    // parse results held, at most cacheSize
}

// Stats returns the filter's counts.
func (f *Filter) Stats() Stats {
	return Stats{Parses: f.parses.Load(), Cached: f.cache.len()}
}

// Open returns the stream of one open of a claimed file.
func (f *Filter) Open(r *filter.Request, file filter.File) (filter.Stream, error) {
	return &stream{File: file, f: f}, nil
}

// result returns the parse of version v of file, from the cache or parsed
// now, or nil when the file changed while it was parsed. A parse is cached
// only when the file's version did not change meanwhile and no two reads
// of the same bytes differed.
func (f *Filter) result(file filter.File, v filter.Version) (*result, error) {
	if r := f.cache.get(v); r != nil {
		return r, nil
	}
	f.parses.Add(1)
	l, err := parse(file, v.Size)
	if errors.Is(err, errChanged) {
		return nil, nil
	}
	if l == nil {
		return nil, err
	}
	now, verr := file.Version()
	if verr != nil {
		return nil, fmt.Errorf("redact: %w", verr)
	}
	if now != v {
		return nil, nil
	}
	r := &result{version: v, layout: l}
	if err != nil {
		r.err = fmt.Errorf("%w: %w", syscall.EIO, err)
	}
	f.cache.put(r)
	return r, nil
}

// maxAttempts is how many times a read is tried while the file changes
// under it, before it fails with EIO.
const maxAttempts = 4

// stream serves a claimed file with its GPS values zeroed. It holds no
// state of its own: every read asks the filter's cache.
type stream struct {
	filter.File
	f *Filter
}

// ReadAt reads the file with the GPS values zeroed, or fails with EIO; see
// Filter.
//
// A read applies the ranges of one version of the file only to bytes of
// that version: it takes the version (filter.Version: identity, size,
// mtime, ctime), gets the parse of that version, reads the data, then
// checks that the version is still the same and that the bytes the parse
// relied on (markers, headers, IFD entries, pointers) still hold what the
// parser saw. Otherwise it tries again, and after maxAttempts fails.
//
// Residual risk (see docs/security.md): on filesystems with fine-grained
// timestamps the version changes with every write(2), truncate or
// fallocate of the lower file, and File.Version waits for a write(2) under
// way (on ext4, tmpfs and btrfs), but stores through a shared writable
// mapping of the lower file change data without changing the version. A
// change the version misses is caught when it touches the structure the
// parse relied on, unless it is made and undone within one read. Both
// need a writer of the lower file beside the mount; the callers the rule
// applies to cannot change the structure through it (see WriteAt).
func (s *stream) ReadAt(p []byte, off int64) (int, error) {
	for range maxAttempts {
		n, done, err := s.try(p, off)
		if done {
			return n, err
		}
	}
	return 0, fmt.Errorf("redact: file changed during %d reads: %w", maxAttempts, syscall.EIO)
}

// try makes one attempt of ReadAt; done is false when the file changed.
func (s *stream) try(p []byte, off int64) (n int, done bool, err error) {
	v, err := s.Version()
	if err != nil {
		return 0, true, fmt.Errorf("redact: %w", err)
	}
	r, err := s.f.result(s.File, v)
	if r == nil || err != nil {
		return 0, err != nil, err
	}
	var rerr error
	if r.err == nil {
		if n, rerr = s.File.ReadAt(p, off); rerr != nil && rerr != io.EOF {
			return 0, true, fmt.Errorf("redact: %w", rerr)
		}
	}
	same, err := r.layout.verify(s.File)
	if err != nil && !errors.Is(err, errFormat) {
		return 0, true, fmt.Errorf("redact: %w", err)
	}
	now, verr := s.Version()
	if verr != nil {
		return 0, true, fmt.Errorf("redact: %w", verr)
	}
	if !same || err != nil || now != v {
		s.f.cache.drop(r)
		return 0, false, nil
	}
	if r.err != nil {
		return 0, true, r.err
	}
	Zero(p[:n], off, r.layout.ranges)
	return n, true, rerr
}

// WriteAt writes through to the lower file from the first byte no parse
// of the file as it is depends on (see Filter), and fails with EPERM
// before it.
func (s *stream) WriteAt(p []byte, off int64) (int, error) {
	free, err := s.writable()
	if err != nil {
		return 0, err
	}
	if off < free {
		return 0, fmt.Errorf("redact: a write at %d would change the image's metadata (before %d): %w", off, free, syscall.EPERM)
	}
	return s.File.WriteAt(p, off)
}

// writable returns the offset from which writes cannot change how the file
// parses now: 0 for an empty file, the body of a file that parses, the end
// of any other.
func (s *stream) writable() (int64, error) {
	for range maxAttempts {
		v, err := s.Version()
		if err != nil {
			return 0, fmt.Errorf("redact: %w", err)
		}
		if v.Size == 0 {
			return 0, nil
		}
		r, err := s.f.result(s.File, v)
		switch {
		case err != nil:
			return 0, err
		case r == nil:
			continue // changed while parsed
		case r.err == nil:
			return r.layout.body, nil
		}
		return v.Size, nil
	}
	return 0, fmt.Errorf("redact: file changed during %d parses: %w", maxAttempts, syscall.EIO)
}

// Close ends the open; the lower file is the dispatcher's to close.
func (s *stream) Close() error { return nil }
