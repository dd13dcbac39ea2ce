package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/sievefs/sievefs/internal/config"
)

const checkUsage = `sievefs check FILE...

Checks policy files without side effects (no audit log is opened) and
prints their rules as understood. Exits 0 when every file is valid, 2 when
one is not, after printing its errors on stderr as FILE:LINE:COL: message.`

// runCheck validates policy files and describes them.
func runCheck(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("sievefs check", flag.ContinueOnError)
	f.SetOutput(stderr)
	pos, code, done := parseCommand(f, checkUsage, args, stderr)
	if done {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprintln(stderr, "sievefs check: want a policy FILE")
		f.Usage()
		return exitUsage
	}
	code = exitOK
	for i, file := range pos {
		p, err := config.Load(file)
		if err != nil {
			printPolicyErrors(stderr, "sievefs check", file, err)
			code = exitUsage
			continue
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		p.Describe(stdout)
	}
	return code
}
