package sievefs

import "testing"

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/mnt/a\040b\134c\011`); got != "/mnt/a b\\c\t" {
		t.Errorf("got %q", got)
	}
}
