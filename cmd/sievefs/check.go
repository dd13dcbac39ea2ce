package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sievefs/sievefs/internal/config"
)

const checkUsage = `sievefs check [--lower DIR] FILE...

Builds each policy file as sievefs mount does, as the user running it:
its audit logs are opened, or made with their missing directories, then
closed, and what was made is removed again. Prints the rules as
understood. Exits 0 when every file is valid, 2 when one is not, after
printing its errors on stderr as FILE:LINE:COL: message, the same that
sievefs mount prints. With --lower, also warns on stderr (as mount does)
about globs that name a directory of DIR, and so nothing inside it.`

// runCheck validates policy files and describes them.
func runCheck(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("sievefs check", flag.ContinueOnError)
	f.SetOutput(stderr)
	lowerDir := f.String("lower", "", "the lower `DIR` the policies are for: warn about globs that name a directory of it without what is inside")
	pos, code, done := parseCommand(f, checkUsage, args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprintln(stderr, "sievefs check: want a policy FILE")
		f.Usage()
		return exitUsage
	}
	if *lowerDir != "" {
		fi, err := os.Stat(*lowerDir)
		if err == nil && !fi.IsDir() {
			err = fmt.Errorf("%s: not a directory", *lowerDir)
		}
		if err != nil {
			fmt.Fprintf(stderr, "sievefs check: --lower: %v\n", err)
			return exitUsage
		}
	}
	code = exitOK
	for i, file := range pos {
		pol, _, closer, err := buildPolicy(file)
		if err != nil {
			printPolicyErrors(stderr, "sievefs check", file, err)
			code = exitUsage
			continue
		}
		config.Discard(closer)
		if *lowerDir != "" {
			for _, w := range policyWarnings(pol, *lowerDir) {
				fmt.Fprintln(stderr, w.Error())
			}
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		pol.Describe(stdout)
	}
	return code
}
