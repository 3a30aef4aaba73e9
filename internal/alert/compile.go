package alert

import (
	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// op is a comparison operator.
type op uint8

const (
	opGT op = iota + 1
	opGE
	opLT
	opLE
)

func parseOp(s string) (op, bool) {
	switch s {
	case ">":
		return opGT, true
	case ">=":
		return opGE, true
	case "<":
		return opLT, true
	case "<=":
		return opLE, true
	}
	return 0, false
}

// test reports whether v op th holds; false for NaN.
func (o op) test(v, th float64) bool {
	switch o {
	case opGT:
		return v > th
	case opGE:
		return v >= th
	case opLT:
		return v < th
	case opLE:
		return v <= th
	}
	return false
}

// aggKind is a compiled Rule.Aggregation.
type aggKind uint8

const (
	aggLast aggKind = iota
	aggAvg
	aggMax
	aggMin
	aggIncrease
)

// compiled is a rule prepared for evaluation. It is immutable; a changed
// rule gets a new compiled value.
type compiled struct {
	rule      Rule
	op        op
	threshold float64
	clear     float64 // the resolve threshold: Clear when set, else Threshold
	forNs     int64
	agg       aggKind
	windowMs  int64
	matchers  []metric.LabelMatcher
	// Machine selection.
	allMachines   bool
	machines      []string // exact ids and globs
	machineLabels []metric.LabelMatcher
}

func compile(r Rule) *compiled {
	c := &compiled{rule: r, forNs: int64(r.For)}
	c.op, _ = parseOp(r.Op)
	c.threshold = r.Threshold
	c.clear = r.Threshold
	if r.Clear != nil {
		c.clear = *r.Clear
	}
	switch r.Aggregation {
	case AggAvg:
		c.agg = aggAvg
	case AggMax:
		c.agg = aggMax
	case AggMin:
		c.agg = aggMin
	case AggIncrease:
		c.agg = aggIncrease
	}
	c.windowMs = r.Window.Milliseconds()
	c.matchers = compileMatchers(r.Matchers)
	c.allMachines = len(r.Machines) == 0
	c.machines = r.Machines
	c.machineLabels = compileMatchers(r.MachineLabels)
	return c
}

// breach reports whether the aggregated value v satisfies the firing
// condition.
func (c *compiled) breach(v float64) bool { return c.op.test(v, c.threshold) }

// holds reports whether a firing alert with value v keeps firing
// (hysteresis: compared with Clear when set).
func (c *compiled) holds(v float64) bool { return c.op.test(v, c.clear) }

// selects reports whether the rule applies to the machine.
func (c *compiled) selects(id string, labels metric.Labels) bool {
	if !c.allMachines {
		ok := false
		for _, p := range c.machines {
			if matchName(p, id) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return matchLabels(c.machineLabels, labels)
}

// sameEvaluation reports whether a slot's window can be kept when its rule
// changes from c to d.
func (c *compiled) sameWindow(d *compiled) bool {
	return c.agg == d.agg && c.windowMs == d.windowMs
}

// ruleSet is the compiled set of enabled rules; it is replaced as a whole
// (copy on write) whenever a rule changes.
type ruleSet struct {
	version  uint64
	byMetric map[string][]*compiled // threshold rules by metric name
	offline  []*compiled
	byID     map[string]*compiled
}

func newRuleSet(version uint64, rules []Rule) *ruleSet {
	rs := &ruleSet{version: version, byMetric: map[string][]*compiled{}, byID: map[string]*compiled{}}
	for _, r := range rules {
		if !r.Enabled {
			continue
		}
		c := compile(r)
		rs.byID[r.ID] = c
		if r.Kind == KindOffline {
			rs.offline = append(rs.offline, c)
		} else {
			rs.byMetric[r.Metric] = append(rs.byMetric[r.Metric], c)
		}
	}
	return rs
}
