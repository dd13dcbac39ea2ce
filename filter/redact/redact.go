package redact

import (
	"fmt"
	"sync"
	"syscall"

	"github.com/sievefs/sievefs/filter"
)

// Fields are the kinds of metadata the filter can redact.
var Fields = []string{"gps"}

// Filter shows JPEG and TIFF-based files under its paths with the values of
// their EXIF GPS tags zeroed, the size and every other byte unchanged. It
// claims only files that start like such images; the callers its rule
// applies to read them through the daemon, everyone else (and every other
// file) keeps passthrough. Writes go to the lower file as they are; the
// redacted ranges are found again whenever the file changes. Those callers
// cannot rename or link files out of the paths.
type Filter struct {
	paths  filter.Patterns
	fields []string
}

var (
	_ filter.DataFilter  = (*Filter)(nil)
	_ filter.PreFilter   = (*Filter)(nil)
	_ filter.Scoped      = (*Filter)(nil)
	_ filter.ScopedBelow = (*Filter)(nil)
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
	return &Filter{paths: paths, fields: fields}, nil
}

// Kind returns "redact".
func (f *Filter) Kind() string { return "redact" }

// Paths returns the globs of the files redacted.
func (f *Filter) Paths() filter.Patterns { return f.paths }

// Fieldnames returns the fields redacted.
func (f *Filter) Fieldnames() []string { return f.fields }

// Covers reports whether files at path are redacted.
func (f *Filter) Covers(path string) bool { return f.paths.Match(path) }

// CoversBelow reports whether something beneath dir may be redacted.
func (f *Filter) CoversBelow(dir string) bool { return f.paths.MatchBelow(dir) }

// Claims reports whether the file is under the paths, whatever it holds.
func (f *Filter) Claims(r *filter.Request) bool { return f.paths.Match(r.Path) }

// Pre keeps the callers the rule applies to from taking files out of its
// reach by renaming or linking them elsewhere (EXDEV: mv(1) then copies the
// redacted bytes).
func (f *Filter) Pre(r *filter.Request) error {
	if r.Op == filter.OpRename || r.Op == filter.OpLink {
		if f.paths.Escapes(r.Path, r.NewPath, r.Type == syscall.S_IFDIR) {
			return syscall.EXDEV
		}
	}
	return nil
}

// Open returns the stream of one open of a claimed file.
func (f *Filter) Open(r *filter.Request, file filter.File) (filter.Stream, error) {
	return &stream{File: file}, nil
}

// stream serves a claimed file with its GPS values zeroed.
type stream struct {
	filter.File
	mu      sync.Mutex
	valid   bool
	version filter.Version
	ranges  []Range
}

// current returns the ranges to zero for the file as it is now. A file that
// cannot be parsed is not served (fail closed): its reads fail.
func (s *stream) current() ([]Range, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.Version()
	if err != nil {
		return nil, err
	}
	if s.valid && v == s.version {
		return s.ranges, nil
	}
	size, err := s.Size()
	if err != nil {
		return nil, err
	}
	if size > 0 {
		var head [8]byte
		n, _ := s.File.ReadAt(head[:], 0)
		if !Sniff(head[:n]) {
			// Not an image this filter can read: fail closed.
			return nil, syscall.EIO
		}
	}
	ranges, err := GPSRanges(s.File, size)
	if err != nil {
		return nil, err
	}
	s.ranges, s.version, s.valid = ranges, v, true
	return ranges, nil
}

// ReadAt reads the file with the GPS values zeroed.
func (s *stream) ReadAt(p []byte, off int64) (int, error) {
	ranges, err := s.current()
	if err != nil {
		return 0, err
	}
	n, err := s.File.ReadAt(p, off)
	Zero(p[:n], off, ranges)
	return n, err
}

// WriteAt writes through to the lower file; the ranges are found again
// before the next read.
func (s *stream) WriteAt(p []byte, off int64) (int, error) {
	n, err := s.File.WriteAt(p, off)
	s.mu.Lock()
	s.valid = false
	s.mu.Unlock()
	return n, err
}

// Close ends the open; the lower file is the dispatcher's to close.
func (s *stream) Close() error { return nil }
