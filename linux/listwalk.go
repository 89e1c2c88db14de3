package linux

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// A list_head list walked as crash's list -H: the entries' addresses,
// optionally each entry as a struct (or some of its members).

// ListOptions say how list walks and shows a list.
type ListOptions struct {
	// Offset is where the struct list_head sits in each entry: the
	// entry's address is the node's less Offset (crash's list -o).
	Offset uint64
	// Type, when set, shows each entry as an object of this type
	// (crash's list -s); Members, when set, only these members of it.
	Type    string
	Members []string
}

// ListMember is a member of an entry that list shows.
type ListMember struct {
	Name  string        `json:"name"`
	Value objects.Value `json:"value"`
}

// ListEntry is an entry of a list.
type ListEntry struct {
	// Addr is the entry's address, Node its struct list_head's.
	Addr objects.Hex `json:"address"`
	Node objects.Hex `json:"node"`
	// Value is the entry (ListOptions.Type without Members); Members the
	// members asked for.
	Value   *objects.Value `json:"value,omitempty"`
	Members []ListMember   `json:"members,omitempty"`
}

// ListResult is a walked list.
type ListResult struct {
	Head    objects.Hex `json:"head"`
	Offset  uint64      `json:"offset"`
	Type    string      `json:"type,omitempty"`
	Entries []ListEntry `json:"entries"`
	// Damage names the links the walk went past (and how it reached the
	// nodes after them), as the walkers report damage.
	Damage []objects.DamageReport `json:"damage,omitempty"`
	// Error says why the walk stopped early (a bound, an unreadable
	// head); the entries before were read.
	Error string `json:"error,omitempty"`
}

// ListOffset reads crash's list -o argument: a number (decimal or 0x
// hex) or TYPE.MEMBER ("task_struct.tasks", "struct module.list"), the
// member's offset. Errors wrap objects.ErrNotFound (no such type or
// member) or objects.ErrType (neither form).
func ListOffset(p *objects.Program, s string) (uint64, error) {
	if n, err := strconv.ParseUint(s, 0, 64); err == nil {
		return n, nil
	}
	typ, member, ok := strings.Cut(s, ".")
	if !ok || member == "" {
		return 0, fmt.Errorf("list offset %q: want a number or TYPE.MEMBER: %w", s, objects.ErrType)
	}
	off, _, err := p.MemberOffset(typ, member)
	return off, err
}

// WalkList walks the circular list whose head (a struct list_head that
// is no entry) is at head, as crash's list -H: every node in order,
// bounded by the Program's limit, cycle-safe (objects.ListForEach). A
// damaged link is noted in the Program's damage log and in the result,
// and the walk goes on backward from the head; another error ends the
// walk, in Error when entries were read.
//
// Errors wrap objects.ErrNotFound (the type or a member of it) or the
// memory's error reading the head.
func WalkList(p *objects.Program, head uint64, o ListOptions) (*ListResult, error) {
	r := &ListResult{Head: objects.Hex(head), Offset: o.Offset, Entries: []ListEntry{}}
	if o.Type != "" {
		t, err := p.Type(o.Type)
		if err != nil {
			return nil, fmt.Errorf("list -s %s: %w", o.Type, err)
		}
		for _, m := range o.Members {
			if _, _, err := p.MemberOffset(o.Type, m); err != nil {
				return nil, fmt.Errorf("list -s %s.%s: %w", o.Type, m, err)
			}
		}
		r.Type = btfload.TypeString(t)
	}
	h, err := p.ObjectOf("struct list_head", head)
	if err != nil {
		return nil, err
	}
	for node, err := range objects.ListForEach(h) {
		if d := objects.AsDamage(err); d != nil {
			r.Damage = append(r.Damage, p.NoteDamage(d).Report())
			continue
		}
		if err != nil {
			if len(r.Entries) == 0 {
				return nil, fmt.Errorf("list -H %#x: %w", head, err)
			}
			r.Error = err.Error()
			break
		}
		e := ListEntry{Addr: objects.Hex(node.Addr() - o.Offset), Node: objects.Hex(node.Addr())}
		if o.Type != "" {
			v, err := p.ObjectOf(o.Type, uint64(e.Addr))
			if err != nil {
				return nil, err
			}
			if len(o.Members) == 0 {
				e.Value = &v
			}
			for _, m := range o.Members {
				mv, err := v.Path(m)
				if err != nil {
					return nil, err
				}
				e.Members = append(e.Members, ListMember{Name: m, Value: mv})
			}
		}
		r.Entries = append(r.Entries, e)
	}
	return r, nil
}
