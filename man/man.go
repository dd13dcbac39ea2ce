// Package man holds the manual page sievefs(8), which sievefs
// install-helper installs.
//
// The page is made by go generate from sievefs.8.md, which includes
// docs/usage.md: the manual page and the docs are one text. A test fails
// when sievefs.8 is not what sievefs.8.md makes.
package man

import _ "embed"

//go:generate go run ../internal/mangen sievefs.8.md sievefs.8

// Page is the roff source of sievefs(8).
//
//go:embed sievefs.8
var Page []byte
