package objects

import "fmt"

// Guard bounds a walk and detects a node seen twice.
type Guard struct {
	what  string // e.g. "list at 0xffffffff82a1c940"
	limit int
	n     int
	seen  map[uint64]struct{}
}

func (p *Program) NewGuard(what string) *Guard {
	return &Guard{what: what, limit: p.limit, seen: map[uint64]struct{}{}}
}

// Visit records addr, failing on a repeat (ErrCorrupt) or past the limit
// (ErrLimit).
func (g *Guard) Visit(addr uint64) error {
	if _, dup := g.seen[addr]; dup {
		return fmt.Errorf("%s: node %#x seen twice (a cycle): %w", g.what, addr, ErrCorrupt)
	}
	g.n++
	if g.n > g.limit {
		return fmt.Errorf("%s: more than %d nodes: %w", g.what, g.limit, ErrLimit)
	}
	g.seen[addr] = struct{}{}
	return nil
}
