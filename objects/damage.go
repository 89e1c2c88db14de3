package objects

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Damage is a damaged element of a kernel structure that a walker met
// and went past: a list node whose link is garbage, a record whose
// length is impossible, an object on a page the dump does not hold. A
// crashed kernel's memory is damaged by nature, so walkers name what
// they could not follow and go on with what is still reachable.
//
// Walkers yield a *Damage as the error of an element and keep going;
// consumers that can do without that element skip it (IsDamage). The
// Program also keeps every Damage it was told of (Damaged), for a
// command's closing summary.
type Damage struct {
	// Walk is the structure walked: "list at 0xffffffff82a1c940
	// (init_task.tasks)", "printk ring", "prog_idr".
	Walk string `json:"walk"`
	// Addr is the damaged element's address (a node, a record, a
	// pointer's slot); Object names what holds it, where known
	// ("struct task_struct 0xffff888003a1c000").
	Addr   Hex    `json:"address"`
	Object string `json:"object,omitempty"`
	// Expected is what the walker needed there, Found what it read.
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
	// Recovery says what the walker did to reach the rest: "walked the
	// list backward from its head: 7 nodes", "found through the PID
	// IDR".
	Recovery string `json:"recovery,omitempty"`
	// Err is the cause: a fault reading memory (a page the dump
	// excludes) or ErrCorrupt.
	Err error `json:"-"`
}

// Error says where, what was expected and found, and the cause.
func (d *Damage) Error() string {
	var b strings.Builder
	b.WriteString(d.Walk)
	if d.Addr != 0 {
		fmt.Fprintf(&b, ": %#x", uint64(d.Addr))
	}
	if d.Object != "" {
		fmt.Fprintf(&b, " (%s)", d.Object)
	}
	switch {
	case d.Expected != "" && d.Found != "":
		fmt.Fprintf(&b, ": expected %s, found %s", d.Expected, d.Found)
	case d.Expected != "":
		fmt.Fprintf(&b, ": expected %s", d.Expected)
	case d.Found != "":
		fmt.Fprintf(&b, ": found %s", d.Found)
	}
	if d.Err != nil {
		fmt.Fprintf(&b, ": %v", d.Err)
	}
	if d.Recovery != "" {
		fmt.Fprintf(&b, "; %s", d.Recovery)
	}
	return b.String()
}

// Unwrap returns the cause.
func (d *Damage) Unwrap() error { return d.Err }

// DamageReport is a Damage as data, its cause as text: what --json
// prints and scripts get.
type DamageReport struct {
	Walk     string `json:"walk"`
	Addr     Hex    `json:"address"`
	Object   string `json:"object,omitempty"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
	Recovery string `json:"recovery,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Report returns d as data.
func (d *Damage) Report() DamageReport {
	r := DamageReport{Walk: d.Walk, Addr: d.Addr, Object: d.Object, Expected: d.Expected, Found: d.Found, Recovery: d.Recovery}
	if d.Err != nil {
		r.Error = d.Err.Error()
	}
	return r
}

// MarshalJSON renders d's Report.
func (d *Damage) MarshalJSON() ([]byte, error) { return json.Marshal(d.Report()) }

// IsDamage says whether err is (or wraps) a *Damage: an element a walker
// went past, after which it goes on.
func IsDamage(err error) bool {
	var d *Damage
	return errors.As(err, &d)
}

// AsDamage returns the *Damage err is or wraps, or nil.
func AsDamage(err error) *Damage {
	var d *Damage
	if errors.As(err, &d) {
		return d
	}
	return nil
}

// damageLog is what a Program was told was damaged, each element once.
type damageLog struct {
	mu   sync.Mutex
	seen map[string]bool
	list []*Damage
}

// maxDamage bounds the log: a dump damaged everywhere (or fuzzed) must
// not grow memory without bound.
const maxDamage = 10000

// NoteDamage records d in the Program's damage log, once per walk,
// address and expectation, and returns d. Walkers call it where they
// detect damage; commands print the log when they finish.
func (p *Program) NoteDamage(d *Damage) *Damage {
	if p == nil {
		return d
	}
	key := fmt.Sprintf("%s\x00%#x\x00%s\x00%s", d.Walk, uint64(d.Addr), d.Expected, d.Found)
	l := &p.damage
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	if l.seen[key] || len(l.list) >= maxDamage {
		return d
	}
	l.seen[key] = true
	l.list = append(l.list, d)
	return d
}

// Damaged returns the damage noted so far, in the order it was met.
func (p *Program) Damaged() []*Damage {
	if p == nil {
		return nil
	}
	l := &p.damage
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Damage(nil), l.list...)
}

// DamageOf returns the *Damage err is or wraps, with walk prefixed to
// its Walk (the name the caller knows the structure by, such as
// "init_task.tasks") and noted in the Program's log; or nil when err is
// not damage.
func (p *Program) DamageOf(err error, walk string) *Damage {
	d := AsDamage(err)
	if d == nil {
		return nil
	}
	if walk != "" && !strings.HasPrefix(d.Walk, walk) {
		d.Walk = walk + " (" + d.Walk + ")"
	}
	return p.NoteDamage(d)
}
