package filter

import "slices"

// Callers is a set of users and groups.
type Callers struct {
	Uids []uint32
	Gids []uint32
}

// has reports whether c's uid or gid is in the set.
func (s *Callers) has(c Caller) bool {
	return slices.Contains(s.Uids, c.Uid) || slices.Contains(s.Gids, c.Gid)
}

// Condition limits a rule to some callers: those in Only (when set) and not
// in Unless (when set).
type Condition struct {
	Only   *Callers
	Unless *Callers
}

// IsZero reports whether the condition lets every caller through.
func (c Condition) IsZero() bool { return c.Only == nil && c.Unless == nil }

// Applies reports whether the rule applies to c.
func (c Condition) Applies(caller Caller) bool {
	if c.Only != nil && !c.Only.has(caller) {
		return false
	}
	return c.Unless == nil || !c.Unless.has(caller)
}

// Rule is one filter of a chain and the callers it applies to.
type Rule struct {
	// Name identifies the rule in logs, metrics and status ("3:hide").
	Name   string
	Filter Filter
	When   Condition
}

// Decision names what a rule did, as counted per rule.
type Decision string

// The decisions counted.
const (
	DecisionError   Decision = "error"   // a pre- or post-filter ended an operation with an errno
	DecisionAnswer  Decision = "answer"  // a pre-filter answered an operation
	DecisionRewrite Decision = "rewrite" // attributes or a post result rewritten
	DecisionDrop    Decision = "drop"    // a directory entry not listed
	DecisionData    Decision = "data"    // an open served through the filter's stream
	DecisionRename  Decision = "rename"  // a name mapped
	// Decisions the chain does not see, counted by the filter itself
	// (DecisionCounter).
	DecisionRecord       Decision = "record"        // an operation recorded (an audit line written)
	DecisionRecordFailed Decision = "record_failed" // an operation that could not be recorded
)

// DecisionCounter is implemented by a filter that counts decisions of its
// own that the chain cannot see, such as the lines an audit filter writes
// (its post-filter returns the result unchanged). The counts are added to
// the rule's.
type DecisionCounter interface {
	Decisions() map[Decision]uint64
}

// RuleStats counts the decisions of one rule.
type RuleStats struct {
	Rule      string              `json:"rule"`
	Decisions map[Decision]uint64 `json:"decisions"`
}

// MaxDataRules is how many rules of a chain may be DataFilters.
const MaxDataRules = 8
