package linux

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/kinspect/kinspect/objects"
)

// Memory searched for values, as crash's search: aligned units of 1, 2,
// 4 or 8 bytes equal to one of the values, in a range of kernel virtual
// (or physical) memory, pages that cannot be read skipped.

// MaxSearchBytes bounds the range a search covers.
const MaxSearchBytes = 64 << 30

// DefaultSearchMax is how many hits a search reports by default.
const DefaultSearchMax = 1000

// searchChunk is how much a search reads at once (pages that cannot be
// read are then skipped one by one).
const searchChunk = 64 * PageSize

// SearchOptions say what to search for and where.
type SearchOptions struct {
	// Values are what to find, each compared with a unit of Size bytes
	// (1, 2, 4 or 8; 0: 8), at addresses aligned to Size.
	Values []uint64
	Size   int
	// Start and End bound the range [Start, End), or Length from Start;
	// by default (0) the range is all RAM, through the direct map
	// (physically: from 0), up to max_pfn.
	Start, End, Length uint64
	// Physical: the range is of physical addresses (crash's search -p).
	Physical bool
	// Max bounds the hits reported (0: DefaultSearchMax).
	Max int
}

// SearchHit is a unit that holds one of the values.
type SearchHit struct {
	Addr  objects.Hex `json:"address"`
	Value objects.Hex `json:"value"`
}

// SearchResult is what a search found.
type SearchResult struct {
	Start    objects.Hex   `json:"start"`
	End      objects.Hex   `json:"end"`
	Physical bool          `json:"physical"`
	Size     int           `json:"size"`
	Values   []objects.Hex `json:"values"`
	Hits     []SearchHit   `json:"hits"`
	// Truncated: the search stopped at Max hits, at the last's address.
	Truncated bool `json:"truncated"`
	// Unreadable is the number of pages of the range that could not be
	// read (not mapped, not in the dump), skipped.
	Unreadable uint64 `json:"unreadable_pages"`
}

// SearchMemory searches memory, read by read (virtual or physical as
// o.Physical says), as crash's search does.
//
// Errors wrap objects.ErrType (no values, a bad size, an empty range),
// objects.ErrLimit (a range over MaxSearchBytes), or the error reading
// the memory layout for the default range.
func SearchMemory(p *objects.Program, read ReadFunc, o SearchOptions) (*SearchResult, error) {
	size := cmp0(o.Size, 8)
	if size != 1 && size != 2 && size != 4 && size != 8 {
		return nil, fmt.Errorf("search: a unit of %d bytes: 1, 2, 4 or 8: %w", size, objects.ErrType)
	}
	if len(o.Values) == 0 {
		return nil, fmt.Errorf("search: no value to search for: %w", objects.ErrType)
	}
	start, end := o.Start, o.End
	if o.Length != 0 && o.End != 0 {
		return nil, fmt.Errorf("search: an end and a length: %w", objects.ErrType)
	}
	if start == 0 || end == 0 && o.Length == 0 {
		l, err := ReadMemLayout(p)
		if err != nil {
			return nil, fmt.Errorf("search: the range of RAM: %w", err)
		}
		ramStart, ramEnd := uint64(0), l.MaxPFN<<PageShift
		if !o.Physical {
			ramStart, ramEnd = l.PageOffset, l.PageOffset+ramEnd
		}
		start = cmp.Or(start, ramStart)
		end = cmp.Or(end, ramEnd)
	}
	if o.Length != 0 {
		end = start + o.Length
	}
	switch {
	case end <= start:
		return nil, fmt.Errorf("search: empty range %#x-%#x: %w", start, end, objects.ErrType)
	case end-start > MaxSearchBytes:
		return nil, fmt.Errorf("search: range %#x-%#x over %d bytes: %w", start, end, uint64(MaxSearchBytes), objects.ErrLimit)
	}
	r := &SearchResult{Start: objects.Hex(start), End: objects.Hex(end), Physical: o.Physical, Size: size, Hits: []SearchHit{}}
	mask := ^uint64(0) >> (64 - 8*size)
	want := make([]uint64, 0, len(o.Values))
	for _, v := range o.Values {
		r.Values = append(r.Values, objects.Hex(v))
		want = append(want, v&mask)
	}
	max := cmp0(o.Max, DefaultSearchMax)
	// scan looks for the values in b, read at addr (aligned to size).
	scan := func(b []byte, addr uint64) bool {
		for i := 0; i+size <= len(b); i += size {
			if v := unit(b[i:], size); slices.Contains(want, v) {
				if len(r.Hits) == max {
					r.Truncated = true
					return false
				}
				r.Hits = append(r.Hits, SearchHit{Addr: objects.Hex(addr + uint64(i)), Value: objects.Hex(v)})
			}
		}
		return true
	}
	buf := make([]byte, searchChunk)
	a := start &^ uint64(size-1)
	if a < start {
		a += uint64(size)
	}
	for a < end {
		// Up to the chunk's end, aligned to the chunk, within the range.
		n := min(searchChunk-a%searchChunk, end-a)
		b := buf[:n]
		if err := read(b, a); err == nil {
			if !scan(b, a) {
				break
			}
		} else {
			// Page by page, skipping what cannot be read.
			for pa := a; pa < a+n; {
				pn := min(PageSize-pa%PageSize, a+n-pa)
				if err := read(b[pa-a:pa-a+pn], pa); err != nil {
					r.Unreadable++
				} else if !scan(b[pa-a:pa-a+pn], pa) {
					return r, nil
				}
				pa += pn
			}
		}
		a += n
	}
	return r, nil
}
