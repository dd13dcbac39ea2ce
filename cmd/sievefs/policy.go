package main

// The policy file of `sievefs mount --policy FILE`: loaded before mounting,
// reloaded on SIGHUP.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/config"
	"github.com/sievefs/sievefs/internal/lower"
)

// policyCloseDelay is how long the filters of a replaced policy stay open
// after a reload: requests under way may still use them.
const policyCloseDelay = 5 * time.Second

// policy is the policy file of a daemon and what was built from it.
type policy struct {
	file string // absolute
	// passthrough is the mode mounted with; fixed says the command line
	// chose it, so that the policy's does not matter.
	passthrough string
	fixed       bool

	mu      sync.Mutex
	closer  io.Closer            // of the filters in use
	retired map[uint64]io.Closer // of replaced filters, closed after policyCloseDelay
	nextID  uint64
	lastErr string // of the last reload, "" once one succeeds
	// extra are the rules of the command line (-o uid=…), after the
	// policy's in every reload.
	extra []filter.Rule
}

// loadPolicy loads cfg.policy, builds its filters into cfg.opts and applies
// its passthrough mode unless the command line set one. It warns on stderr
// about what the policy likely does not mean in the lower directory.
// helper says the daemon was started by mount.fuse.sievefs (it runs in /).
// Without a policy it returns nil; on failure it has printed why and
// returns the exit code.
func loadPolicy(cfg *mountConfig, lower string, helper bool, stderr io.Writer) (*policy, int, bool) {
	if cfg.policy == "" {
		return nil, 0, true
	}
	if helper && !filepath.IsAbs(cfg.policy) {
		fmt.Fprintf(stderr, "sievefs mount: policy %q: give an absolute path (mounted by mount(8), sievefs runs in /)\n", cfg.policy)
		return nil, exitUsage, false
	}
	file, err := filepath.Abs(cfg.policy)
	if err != nil {
		fmt.Fprintf(stderr, "sievefs mount: policy: %v\n", err)
		return nil, exitUsage, false
	}
	// Named as given, so that its messages are those of sievefs check.
	pol, rules, closer, err := buildPolicy(cfg.policy)
	if err != nil {
		printPolicyErrors(stderr, "sievefs mount", cfg.policy, err)
		return nil, exitUsage, false
	}
	for _, w := range policyWarnings(pol, lower) {
		fmt.Fprintln(stderr, w.Error())
	}
	if pol.Passthrough != "" && !cfg.passthroughSet {
		mode, err := sievefs.ParsePassthroughMode(pol.Passthrough)
		if err != nil {
			closer.Close()
			fmt.Fprintf(stderr, "sievefs mount: policy %s: %v\n", file, err)
			return nil, exitUsage, false
		}
		cfg.opts.Passthrough = mode
	}
	cfg.opts.Rules = rules
	mode := string(cfg.opts.Passthrough)
	if mode == "" {
		mode = string(sievefs.PassthroughAuto)
	}
	return &policy{file: file, passthrough: mode, fixed: cfg.passthroughSet, closer: closer, retired: map[uint64]io.Closer{}}, 0, true
}

// buildPolicy loads the policy file and builds its filters, opening (and
// making) its audit logs: what mount does at start and on SIGHUP, and what
// check does before it discards them, so that check refuses whatever mount
// would, with the same FILE:LINE:COL messages (config.Errors).
func buildPolicy(file string) (*config.Policy, []filter.Rule, io.Closer, error) {
	pol, err := config.Load(file)
	if err != nil {
		return nil, nil, nil, err
	}
	rules, closer, err := pol.Build()
	if err != nil {
		return nil, nil, nil, err
	}
	return pol, rules, closer, nil
}

// policyWarnings returns the policy's warnings about the lower directory
// (config.Policy.Warnings): none when it cannot be opened.
func policyWarnings(pol *config.Policy, dir string) config.Errors {
	return pol.Warnings(func(path string) bool { return lower.IsDirBeneath(dir, path) })
}

// printPolicyErrors prints the errors of a policy file, one per line as
// FILE:LINE:COL: message, then how many there were.
func printPolicyErrors(w io.Writer, cmd, file string, err error) {
	var es config.Errors
	if !errors.As(err, &es) {
		fmt.Fprintf(w, "%s: %v\n", cmd, err)
		return
	}
	fmt.Fprintln(w, es.Error())
	n := "1 error"
	if len(es) > 1 {
		n = fmt.Sprintf("%d errors", len(es))
	}
	fmt.Fprintf(w, "%s: %s: %s\n", cmd, file, n)
}

// reload loads the policy file again and puts its filters in place. On
// failure the filters in use stay, and the error is kept for status.
func (p *policy) reload(m *sievefs.Mount, logger *slog.Logger) {
	pol, rules, closer, err := buildPolicy(p.file)
	if err == nil {
		if err = m.SetRules(append(rules, p.extra...)); err != nil {
			closer.Close()
		}
	}
	if err != nil {
		p.mu.Lock()
		p.lastErr = err.Error()
		p.mu.Unlock()
		logger.Error("policy reload failed; keeping the previous policy", "policy", p.file,
			"err", strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	p.mu.Lock()
	old := p.closer
	p.closer, p.lastErr = closer, ""
	p.nextID++
	id := p.nextID
	p.retired[id] = old
	p.mu.Unlock()
	time.AfterFunc(policyCloseDelay, func() {
		p.mu.Lock()
		c, ok := p.retired[id]
		delete(p.retired, id)
		p.mu.Unlock()
		if ok {
			c.Close()
		}
	})
	logger.Info("policy reloaded", "policy", p.file, "rules", len(rules))
	for _, w := range policyWarnings(pol, m.Lower) {
		logger.Warn("policy", "warning", w.Error())
	}
	if pol.Passthrough != "" && pol.Passthrough != p.passthrough && !p.fixed {
		logger.Warn("the policy's passthrough mode applies at the next mount", "policy", p.file, "passthrough", pol.Passthrough)
	}
}

// status returns the policy file and the error of the last reload.
func (p *policy) status() (file, lastErr string) {
	if p == nil {
		return "", ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.file, p.lastErr
}

// close closes the filters of the policy in use and of those replaced.
func (p *policy) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	cs := []io.Closer{p.closer}
	for id, c := range p.retired {
		cs = append(cs, c)
		delete(p.retired, id)
	}
	p.closer = nil
	p.mu.Unlock()
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
}
