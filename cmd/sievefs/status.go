package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/control"
	"github.com/sievefs/sievefs/filter"
)

// runStatus prints what every sievefs mount (or the one on MOUNTPOINT) is
// doing, as its daemon says over the control socket. Run by a user other
// than root, it shows that user's own mounts and counts the others, whose
// daemons only root or their own user may ask. It exits 0 when every mount
// shown answered, 1 otherwise.
func runStatus(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("sievefs status", flag.ContinueOnError)
	f.SetOutput(stderr)
	asJSON := f.Bool("json", false, "print a JSON array, one object per mount (keys in docs/operations.md)")
	pos, code, done := parseCommand(f, "sievefs status [--json] [MOUNTPOINT]", args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) > 1 {
		fmt.Fprintf(stderr, "sievefs status: want at most one MOUNTPOINT, got %d arguments\n", len(pos))
		f.Usage()
		return exitUsage
	}
	var mounts []control.Mount
	hidden := 0
	if len(pos) == 1 {
		m, err := findMount(pos[0])
		if err != nil {
			fmt.Fprintf(stderr, "sievefs status: %v\n", err)
			return exitFailure
		}
		mounts = []control.Mount{m}
	} else if all, err := control.Mounts(); err != nil {
		fmt.Fprintf(stderr, "sievefs status: %v\n", err)
		return exitFailure
	} else {
		mounts, hidden = ownMounts(all, os.Geteuid())
	}
	entries := []control.Entry{}
	code = exitOK
	for _, m := range mounts {
		e := control.Inspect(m)
		if e.State != control.StateRunning {
			code = exitFailure
		}
		entries = append(entries, e)
	}
	if len(pos) == 0 {
		control.CleanStale(os.Geteuid())
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(entries); err != nil {
			fmt.Fprintf(stderr, "sievefs status: %v\n", err)
			return exitFailure
		}
		if hidden > 0 {
			fmt.Fprintf(stderr, "sievefs status: %s\n", hiddenNote(hidden))
		}
		return code
	}
	switch {
	case len(entries) == 0 && hidden > 0:
		fmt.Fprintf(stdout, "no sievefs mounts of uid %d\n", os.Geteuid())
	case len(entries) == 0:
		fmt.Fprintln(stdout, "no sievefs mounts")
	}
	for i, e := range entries {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printEntry(stdout, e)
	}
	if hidden > 0 {
		if len(entries) > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintln(stdout, hiddenNote(hidden))
	}
	if len(pos) == 1 && code != exitOK {
		fmt.Fprintf(stderr, "sievefs status: %s: %s: %s\n", entries[0].Mountpoint, entries[0].State, entries[0].Error)
	}
	return code
}

// ownMounts returns the mounts whose daemons uid may ask about: all of them
// for root, else those uid made; and how many it left out.
func ownMounts(all []control.Mount, uid int) (own []control.Mount, others int) {
	if uid == 0 {
		return all, 0
	}
	for _, m := range all {
		if m.UID == uid {
			own = append(own, m)
		}
	}
	return own, len(all) - len(own)
}

// hiddenNote says how many mounts of other users status left out.
func hiddenNote(n int) string {
	if n == 1 {
		return "not shown: 1 sievefs mount of another user (root sees every mount)"
	}
	return fmt.Sprintf("not shown: %d sievefs mounts of other users (root sees every mount)", n)
}

// printEntry prints one mount for people.
func printEntry(w io.Writer, e control.Entry) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	if e.Status == nil {
		fmt.Fprintf(w, "%s: %s: %s\n", e.Mountpoint, e.State, e.Error)
		fmt.Fprintf(tw, "  lower\t%s\n", e.Lower)
		if e.State == control.StateDead {
			fmt.Fprintf(tw, "  hint\tsievefs umount %s, or sievefs mount --recover LOWER %[1]s\n", e.Mountpoint)
		}
		return
	}
	st := e.Status
	fmt.Fprintf(w, "%s: %s (pid %d)\n", e.Mountpoint, e.State, st.PID)
	fmt.Fprintf(tw, "  lower\t%s\n", e.Lower)
	fmt.Fprintf(tw, "  lower fs\t%s\n", lowerFS(st.LowerFS))
	if st.Policy != "" {
		fmt.Fprintf(tw, "  policy\t%s\n", st.Policy)
	}
	if st.PolicyError != "" {
		// One line per error of the file, the first after the label.
		fmt.Fprintf(tw, "  reload failed\t%s\n", strings.ReplaceAll(st.PolicyError, "\n", "\n\t"))
	}
	for _, r := range st.Filters {
		fmt.Fprintf(tw, "  rule %s\t%s\n", r.Rule, decisions(r.Decisions))
	}
	pt := st.Passthrough
	if pt.Active {
		fmt.Fprintf(tw, "  passthrough\tactive (mode %s, at most %d backing files)\n", pt.Mode, pt.MaxBacking)
	} else {
		fmt.Fprintf(tw, "  passthrough\tunavailable (mode %s): %s\n", pt.Mode, pt.Reason)
	}
	if c := st.Cache; c.Watch {
		fmt.Fprintf(tw, "  cache\t%s: lower watched for changes, kernel caches for %gs\n", c.Mode, c.TimeoutSeconds)
	} else if c.Reason != "" {
		fmt.Fprintf(tw, "  cache\t%s: kernel caches for %gs, lower not watched: %s\n", c.Mode, c.TimeoutSeconds, c.Reason)
	} else {
		fmt.Fprintf(tw, "  cache\t%s: kernel caches for %gs\n", c.Mode, c.TimeoutSeconds)
	}
	if st.Cache.Remote {
		fmt.Fprintf(tw, "  \tchanges made on other hosts show once the timeout runs out\n")
	}
	fmt.Fprintf(tw, "  open files\t%d passthrough, %d daemon-served\n", st.OpenFiles.Passthrough, st.OpenFiles.DaemonServed)
	fmt.Fprintf(tw, "  counters\t%s\n", counters(st.Counters))
	d := st.Descriptors
	fmt.Fprintf(tw, "  descriptors\t%d held for opens by %d users (at most %d, %d per user), %d of %d for directories; %d refused\n",
		d.Held, d.HeldUsers, d.HeldMax, d.PerUserMax, d.Dirs, d.DirMax, d.Refused)
	fmt.Fprintf(tw, "  backing files\t%d\n", len(st.BackingFiles))
	tw.Flush()
	if len(st.BackingFiles) > 0 {
		bw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(bw, "    ID\tOPENS\t  PATH\n")
		for _, b := range st.BackingFiles {
			fmt.Fprintf(bw, "    %d\t%d\t  %s\n", b.ID, b.Opens, b.Path)
		}
		bw.Flush()
	}
}

// lowerFS formats the lower filesystem's line.
func lowerFS(l sievefs.LowerFS) string {
	kind := "local"
	if l.Remote {
		kind = "network or FUSE"
	}
	handles := "yes"
	if !l.FileHandles {
		handles = "no (reopen by path)"
	}
	return fmt.Sprintf("%s (%s); file handles: %s; %d reopens by path, %d stale handles",
		l.Type, kind, handles, l.ReopensByPath, l.StaleHandles)
}

// decisions formats a rule's decision counts as kind=count, by kind.
func decisions(d map[filter.Decision]uint64) string {
	if len(d) == 0 {
		return "no decisions yet"
	}
	var parts []string
	for k, n := range d {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// counters formats the counters as name=value, with their JSON names.
func counters(c any) string {
	v := reflect.ValueOf(c)
	var parts []string
	for i := 0; i < v.NumField(); i++ {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		parts = append(parts, fmt.Sprintf("%s=%v", name, v.Field(i)))
	}
	return strings.Join(parts, " ")
}
