package bpf_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// TestLabBPFMaps: bpf.MapForEach finds every map bpftool listed, with the
// same id, type, name, sizes, flags, BTF id, owner and memlock
// (truth/bpftool/map.json), on the formats of labFormats.
func TestLabBPFMaps(t *testing.T) {
	for name, p := range labkernel.Programs(t, labkernel.Formats...) {
		t.Run(name, func(t *testing.T) {
			var want []struct {
				ID            uint32 `json:"id"`
				Type          string `json:"type"`
				Name          string `json:"name"`
				Flags         uint32 `json:"flags"`
				BytesKey      uint32 `json:"bytes_key"`
				BytesValue    uint32 `json:"bytes_value"`
				MaxEntries    uint32 `json:"max_entries"`
				BytesMemlock  uint64 `json:"bytes_memlock"`
				OwnerProgType string `json:"owner_prog_type"`
				BTFID         uint32 `json:"btf_id"`
			}
			labdata.ReadJSON(t, labkernel.Scenario(name).Path("truth/bpftool/map.json"), &want)
			i := 0
			truncated := false
			for m, err := range bpf.MapForEach(p) {
				if excluded(err) && m == nil {
					// A missing map, or a missing xarray node that
					// hides every map below it.
					t.Logf("%v", err)
					i++
					truncated = true
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if i >= len(want) {
					t.Fatalf("map %d: bpftool listed only %d", m.ID, len(want))
				}
				w := want[i]
				i++
				ml, err := m.Memlock()
				if excluded(err) || excluded(m.BTFErr) {
					// makedumpfile -d 31 left out a page of the map's
					// structures or of its BTF object.
					t.Logf("map %d: %v %v", m.ID, err, m.BTFErr)
					continue
				}
				if err != nil {
					t.Errorf("map %d memlock: %v", m.ID, err)
				}
				owner := ""
				if m.Owner != nil {
					owner = m.Owner.ProgTypeName
				}
				got := fmt.Sprint(m.ID, m.TypeName, m.Name, m.Flags, m.KeySize, m.ValueSize, m.MaxEntries, ml, owner, m.BTFID)
				exp := fmt.Sprint(w.ID, w.Type, w.Name, w.Flags, w.BytesKey, w.BytesValue, w.MaxEntries, w.BytesMemlock, w.OwnerProgType, w.BTFID)
				if got != exp {
					t.Errorf("map:\n got  %s\n want %s", got, exp)
				}
			}
			if i != len(want) && !truncated {
				t.Errorf("%d maps, bpftool %d", i, len(want))
			}
		})
	}
}

// excluded says err is a page a filtered dump left out.
func excluded(err error) bool { return errors.Is(err, vmcore.ErrPageExcluded) }

// TestLabHashOrders: a preallocated hash map read in memory order (the
// element array scan used for big maps) has exactly the elements of the
// bucket walk (bpftool's order), for hash, per-CPU hash and LRU hash.
func TestLabHashOrders(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			n := 0
			for m, err := range bpf.MapForEach(p) {
				if err != nil {
					t.Fatal(err)
				}
				switch m.Type {
				case bpf.MapTypeHash, bpf.MapTypePerCPUHash, bpf.MapTypeLRUHash:
				default:
					continue
				}
				if m.MaxEntries > 1<<16 {
					continue
				}
				var sets [2][]string
				for i, o := range []bpf.MapOrder{bpf.OrderKernel, bpf.OrderMemory} {
					for e, err := range m.EntriesIn(o) {
						if err != nil {
							t.Fatalf("map %d order %d: %v", m.ID, o, err)
						}
						sets[i] = append(sets[i], fmt.Sprintf("%x=%x%x", e.Key, e.Value, e.PerCPU))
					}
					sort.Strings(sets[i])
				}
				if strings.Join(sets[0], " ") != strings.Join(sets[1], " ") {
					t.Errorf("map %d (%s): buckets %v\nelement array %v", m.ID, m.Name, sets[0], sets[1])
				}
				if len(sets[0]) > 0 {
					n++
				}
			}
			if n < 3 {
				t.Errorf("only %d hash maps with elements", n)
			}
		})
	}
}

// TestLabBPFMapErrors: lookups that cannot succeed say why.
func TestLabBPFMapErrors(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf") {
		t.Run(name, func(t *testing.T) {
			if _, err := bpf.MapByID(p, 1<<30); !errors.Is(err, objects.ErrNotFound) {
				t.Errorf("MapByID of a missing id: %v", err)
			}
			for m, err := range bpf.MapForEach(p) {
				if err != nil {
					t.Fatal(err)
				}
				switch m.Type {
				case bpf.MapTypeQueue, bpf.MapTypeStack, bpf.MapTypeRingBuf:
					if _, err := m.Lookup(nil); !errors.Is(err, objects.ErrType) {
						t.Errorf("map %d: lookup in a %s: %v", m.ID, m.TypeName, err)
					}
				case bpf.MapTypeHash:
					if _, err := m.Lookup([]byte{1}); !errors.Is(err, objects.ErrType) {
						t.Errorf("map %d: 1-byte key: %v", m.ID, err)
					}
					if _, err := m.Lookup([]byte{0xff, 0xff, 0xff, 0x7f}); !errors.Is(err, objects.ErrNotFound) {
						t.Errorf("map %d: missing key: %v", m.ID, err)
					}
				}
				if m.Type != bpf.MapTypeRingBuf {
					if _, err := m.RingBuf(); !errors.Is(err, objects.ErrType) {
						t.Errorf("map %d: RingBuf of a %s: %v", m.ID, m.TypeName, err)
					}
				}
			}
		})
	}
}
