package linux

import (
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// The registered device majors /proc/devices lists (fs/proc/devices.c):
// the character devices of fs/char_dev.c's chrdevs hash and the block
// devices of block/genhd.c's major_names hash.

// The majors /proc/devices walks (CHRDEV_MAJOR_MAX, BLKDEV_MAJOR_MAX)
// and the buckets of each hash (CHRDEV_MAJOR_HASH_SIZE,
// BLKDEV_MAJOR_HASH_SIZE): a major is in bucket major % 255.
const (
	devMajorMax = 512
	devHashSize = 255
)

// maxDevChain bounds a hash bucket's chain (a major has at most 2^20
// minors, each region a struct; 4096 is far above what a kernel
// registers).
const maxDevChain = 4096

// Device is a registered device major as /proc/devices lists it.
type Device struct {
	// Kind is "char" or "block".
	Kind  string `json:"kind"`
	Major int    `json:"major"`
	Name  string `json:"name"`
	// BaseMinor and Minors are a character device region's minors
	// (baseminor, minorct).
	BaseMinor int `json:"baseminor,omitempty"`
	Minors    int `json:"minors,omitempty"`
	// Object is the struct char_device_struct or blk_major_name.
	Object objects.Hex `json:"object"`
}

// Devices reads the registered character and block device majors in
// the order /proc/devices lists them: character devices by major
// (each major's regions in chain order, by base minor), then block
// devices by major. A bucket whose chain is damaged is cut there and
// the damage noted in the Program's log; the error is for a hash that
// cannot be read at all, with the devices read before.
func Devices(p *objects.Program) ([]Device, error) {
	var out []Device
	for _, h := range []struct{ kind, variable, typ string }{
		{"char", "chrdevs", "struct char_device_struct"},
		{"block", "major_names", "struct blk_major_name"},
	} {
		buckets, err := readDevHash(p, h.variable, h.typ)
		if err != nil {
			return out, fmt.Errorf("devices: %w", err)
		}
		for major := range devMajorMax {
			for _, d := range buckets[major%len(buckets)] {
				if d.Major == major {
					d.Kind = h.kind
					out = append(out, d)
				}
			}
		}
	}
	return out, nil
}

// readDevHash reads every chain of a device hash (an array of pointers
// to objects of type typ linked by next).
func readDevHash(p *objects.Program, variable, typ string) ([][]Device, error) {
	arr, err := p.Variable(variable)
	if err != nil {
		return nil, err
	}
	n, err := arr.Len()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: an empty hash: %w", variable, objects.ErrCorrupt)
	}
	ptrs, err := p.ReadPointers(arr.Addr(), n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", variable, err)
	}
	out := make([][]Device, n)
	for i, a := range ptrs {
		walk := fmt.Sprintf("%s[%d]", variable, i)
		seen := map[uint64]bool{}
		for a != 0 {
			if seen[a] || len(seen) == maxDevChain {
				p.NoteDamage(&objects.Damage{Walk: walk, Addr: objects.Hex(a), Object: typ,
					Expected: fmt.Sprintf("a chain of at most %d, without a cycle", maxDevChain), Err: objects.ErrCorrupt})
				break
			}
			seen[a] = true
			d, next, err := readDev(p, typ, a)
			if err != nil {
				p.NoteDamage(&objects.Damage{Walk: walk, Addr: objects.Hex(a), Object: typ, Expected: "a readable device", Err: err})
				break
			}
			out[i] = append(out[i], d)
			a = next
		}
	}
	return out, nil
}

func readDev(p *objects.Program, typ string, addr uint64) (Device, uint64, error) {
	v, s, err := p.ReadStruct(typ, addr)
	if err != nil {
		return Device{}, 0, err
	}
	d := Device{Major: int(int32(s.Uint("major"))), Object: objects.Hex(addr)}
	next := s.Uint("next")
	if typ == "struct char_device_struct" {
		d.BaseMinor = int(s.Uint("baseminor"))
		d.Minors = int(int32(s.Uint("minorct")))
	}
	if err := s.Err(); err != nil {
		return Device{}, 0, err
	}
	name, err := v.Member("name")
	if err == nil {
		d.Name, err = name.CString()
	}
	if err != nil {
		return Device{}, 0, err
	}
	return d, next, nil
}
