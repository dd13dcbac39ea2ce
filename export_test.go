package sievefs

import (
	"testing"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/config"
)

// PolicyRules builds the rules of a policy file's text (name is the file
// it is reported as), and closes them when tb ends. BenchmarkDispatch
// mounts with it: an internal test cannot import internal/fusetest (which
// imports this package), whose PolicyRules the other tests use.
func PolicyRules(tb testing.TB, name string, yaml []byte) []filter.Rule {
	tb.Helper()
	pol, err := config.Parse(name, yaml)
	if err != nil {
		tb.Fatal(err)
	}
	rules, closer, err := pol.Build()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { closer.Close() })
	return rules
}
