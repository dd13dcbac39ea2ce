package sievefs

import (
	"reflect"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sievefs/sievefs/filter"
)

// TestRawFileSystemTable checks the gate's table against go-fuse: every
// method of RawFileSystem is either served as an operation (rawOps) or says
// why it carries no request to the lower tree (rawNotServed), never both;
// every operation is served by some method; and every operation that pre-
// and post-filters do not see says why that is safe.
func TestRawFileSystemTable(t *testing.T) {
	raw := reflect.TypeFor[fuse.RawFileSystem]()
	methods := map[string]bool{}
	for i := range raw.NumMethod() {
		name := raw.Method(i).Name
		methods[name] = true
		_, served := rawOps[name]
		why, notServed := rawNotServed[name]
		switch {
		case served && notServed:
			t.Errorf("%s is both served and not served", name)
		case !served && !notServed:
			t.Errorf("%s (a RawFileSystem method) is missing from rawOps and rawNotServed", name)
		case notServed && why == "":
			t.Errorf("%s is not served and says no reason", name)
		}
	}
	for name := range rawOps {
		if !methods[name] {
			t.Errorf("rawOps names %s, which RawFileSystem does not have", name)
		}
	}
	for name := range rawNotServed {
		if !methods[name] {
			t.Errorf("rawNotServed names %s, which RawFileSystem does not have", name)
		}
	}
	servedOps := map[filter.Op]bool{}
	for _, o := range rawOps {
		servedOps[o] = true
	}
	for o := range filter.NumOps {
		info := o.Info()
		if !servedOps[o] {
			t.Errorf("operation %s is served by no RawFileSystem method", o)
		}
		if info.Node == "" {
			t.Errorf("operation %s: the table does not say what it names", o)
		}
		if !info.Filtered() && info.Why == "" {
			t.Errorf("operation %s is not filtered and the table does not say why that is safe", o)
		}
		if info.Filtered() && info.Families&filter.FamilyPost == 0 {
			t.Errorf("operation %s has pre-filters but no post-filters", o)
		}
		if info.Answerable() && !info.Filtered() {
			t.Errorf("operation %s may be answered but is not filtered", o)
		}
	}
}
