package config

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDocPolicies checks that every policy shown in the docs (the ```yaml
// blocks of README.md and docs/*.md) parses, so that a reader who copies
// one gets a policy sievefs takes.
func TestDocPolicies(t *testing.T) {
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	files := []string{"../../README.md"}
	more, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, more...)
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range block.FindAllSubmatch(data, -1) {
			n++
			if _, err := Parse(f, m[1]); err != nil {
				t.Errorf("a policy in %s does not parse:\n%s\n%v", f, m[1], err)
			}
		}
	}
	if n == 0 {
		t.Error("no policy found in the docs")
	}
}
