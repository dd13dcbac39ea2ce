package filter_test

import (
	"log"
	"strings"
	"syscall"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
)

// noLogWrites is a complete filter: it implements only PreFilter, so every
// other family of operations, and all file data, goes by untouched.
type noLogWrites struct{}

func (noLogWrites) Kind() string { return "no-log-writes" }

func (noLogWrites) Pre(r *filter.Request) error {
	if r.Modifies() && strings.HasSuffix(r.Path, ".log") {
		return syscall.EPERM
	}
	return nil
}

// A custom filter that keeps everyone but root from changing *.log files,
// mounted over /srv/data. Reads of the logs, and everything else, stay on
// kernel passthrough.
func Example() {
	rules := []filter.Rule{{
		Filter: noLogWrites{},
		When:   filter.Condition{Unless: &filter.Callers{Uids: []uint32{0}}},
	}}
	m, err := sievefs.MountView("/srv/data", "/mnt/view", sievefs.Options{Rules: rules, AllowOther: true})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Unmount()
	m.Wait() // until unmounted
}

// upper is a data filter: the files it claims are served by the daemon
// through its stream, every other file keeps passthrough.
type upper struct{}

func (upper) Kind() string { return "upper" }

// Claims *.shout files, whatever their content.
func (upper) Claims(r *filter.Request) bool {
	return strings.HasSuffix(r.Path, ".shout")
}

func (upper) Open(r *filter.Request, f filter.File) (filter.Stream, error) {
	return upperStream{f}, nil
}

type upperStream struct{ filter.File }

// ReadAt returns the file's ASCII letters in upper case (the size stays the
// same); writes go through as they are.
func (s upperStream) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.File.ReadAt(p, off)
	for i, b := range p[:n] {
		if 'a' <= b && b <= 'z' {
			p[i] = b - 'a' + 'A'
		}
	}
	return n, err
}

func (upperStream) Close() error { return nil }

// A data filter that shows *.shout files in upper case.
func Example_dataFilter() {
	rules := []filter.Rule{{Filter: upper{}}}
	m, err := sievefs.MountView("/srv/data", "/mnt/view", sievefs.Options{Rules: rules})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Unmount()
	m.Wait()
}
