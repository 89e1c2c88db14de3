package orc

import (
	"encoding/binary"
	"fmt"
)

// Table is the ORC data of one image (vmlinux, a block of it, or a
// module): entries sorted by instruction address.
type Table struct {
	name   string
	ipAddr uint64 // address of ips[0]: the ip entries are relative to their own address
	ips    []byte // s32 each
	orcs   []byte // rawEntrySize each
	layout Layout
}

// maxEntries bounds a table read from memory: vmlinux has ~400,000.
const maxEntries = 1 << 24

// NewTable checks and wraps the raw tables of one image: ips, the
// .orc_unwind_ip entries read from address ipAddr, and orcs, the
// .orc_unwind entries. It checks the sizes agree and that the addresses
// are sorted, as the kernel leaves them after boot. Errors wrap ErrFormat
// (a *FormatError naming the table and the entry).
func NewTable(name string, ipAddr uint64, ips, orcs []byte, l Layout) (*Table, error) {
	if len(ips)%rawIPSize != 0 {
		return nil, formatErr(name+" .orc_unwind_ip", -1, ipAddr, "%d bytes is not a whole number of entries", len(ips))
	}
	if len(orcs)%rawEntrySize != 0 {
		return nil, formatErr(name+" .orc_unwind", -1, 0, "%d bytes is not a whole number of entries", len(orcs))
	}
	n := len(ips) / rawIPSize
	if n != len(orcs)/rawEntrySize {
		return nil, formatErr(name, -1, ipAddr, "%d ip entries but %d ORC entries", n, len(orcs)/rawEntrySize)
	}
	if n > maxEntries {
		return nil, formatErr(name, -1, ipAddr, "%d entries is more than %d", n, maxEntries)
	}
	t := &Table{name: name, ipAddr: ipAddr, ips: ips, orcs: orcs, layout: l}
	for i := 1; i < n; i++ {
		if t.IP(i) < t.IP(i-1) {
			return nil, formatErr(name+" .orc_unwind_ip", i, ipAddr+uint64(i*rawIPSize), "address %#x is below the previous entry's %#x: the table is not sorted", t.IP(i), t.IP(i-1))
		}
	}
	return t, nil
}

// Len is the number of entries.
func (t *Table) Len() int { return len(t.ips) / rawIPSize }

// IP returns the instruction address of entry i: the s32 plus its own
// address (orc_ip in unwind_orc.c).
func (t *Table) IP(i int) uint64 {
	rel := int32(binary.LittleEndian.Uint32(t.ips[i*rawIPSize:]))
	return t.ipAddr + uint64(i*rawIPSize) + uint64(int64(rel))
}

// Entry decodes entry i.
func (t *Table) Entry(i int) (Entry, error) {
	return t.layout.Decode(t.orcs[i*rawEntrySize:])
}

// Find returns the entry for ip, as the kernel's __orc_find: the last
// entry at or below ip (the rightmost of duplicates), or the first entry
// when all are above it. ok is false for an empty table.
func (t *Table) Find(ip uint64) (e Entry, index int, ok bool) {
	n := t.Len()
	if n == 0 {
		return Entry{}, -1, false
	}
	lo, hi, found := 0, n-1, 0
	for lo <= hi {
		mid := lo + (hi-lo)/2
		if t.IP(mid) <= ip {
			found = mid
			lo = mid + 1
		} else {
			hi = mid - 1
		}
	}
	e, err := t.Entry(found)
	return e, found, err == nil
}

// String names the table and its extent.
func (t *Table) String() string {
	if t.Len() == 0 {
		return t.name + ": empty"
	}
	return fmt.Sprintf("%s: %d entries, %#x-%#x", t.name, t.Len(), t.IP(0), t.IP(t.Len()-1))
}
