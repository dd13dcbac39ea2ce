package config

import (
	"fmt"

	"github.com/sievefs/sievefs/filter"
)

// Warnings returns what is valid in the policy but likely not meant, each
// as FILE:LINE:COL: warning: message (hint: …) at its rule; they do not
// keep the policy from loading. isDir reports whether a path relative to
// the mount root names a directory in the lower tree.
//
// A glob without glob syntax that names a directory ("archive") matches
// that directory only, nothing inside it.
func (p *Policy) Warnings(isDir func(path string) bool) Errors {
	var ws Errors
	for i := range p.Rules {
		r := &p.Rules[i]
		for _, g := range r.Paths {
			pat, err := filter.ParsePattern(g)
			if err != nil || !pat.Literal() || !isDir(g) {
				continue
			}
			ws = append(ws, &Error{File: p.File, Line: r.Line, Col: r.Col,
				Msg:  fmt.Sprintf("warning: rule %d (%s): %q matches only the directory itself", r.Index, r.Kind, g),
				Hint: fmt.Sprintf("write %q or %q for what is inside", g+"/", g+"/**")})
		}
	}
	return ws
}
