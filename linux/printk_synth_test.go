package linux

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// prbRec is a descriptor of a synthetic printk ring buffer.
type prbRec struct {
	slot        int
	id          uint64
	state       uint64 // desc_state: 0 reserved, 1 committed, 2 finalized, 3 reusable
	begin, next uint64 // text_blk_lpos
	blockID     uint64 // the id the data block starts with
	seq, ts     uint64
	text        string
	level       uint64
	caller      uint32
	subsys, dev string
}

// A ring of 8 descriptors (count_bits 3) and 512 bytes of text
// (size_bits 9), laid out as kernel/printk/printk_ringbuffer.c writes
// it: each data block an unsigned long id then the text, 8-byte
// aligned, at logical positions (lpos) that grow across wraps; a block
// that does not fit before the ring's end starts at index 0 of the next
// wrap, its id also written where it began.
var prbRecs = []prbRec{
	{slot: 7, id: 7, state: 2, begin: 544, next: 560, seq: 7, ts: 1000, text: "oldest", level: 6, caller: 1},
	{slot: 0, id: 8, state: 2, begin: 560, next: 584, seq: 8, ts: 1500000000, text: "first line", level: 6, caller: 1},
	{slot: 1, id: 9, state: 1, begin: 584, next: 608, seq: 9, ts: 2000000000, text: "second\nline", level: 4, caller: 0x80000001, subsys: "pci", dev: "+pci:0000:00:01.0"},
	{slot: 2, id: 10, state: 0, begin: 608, next: 624, seq: 10, text: "reserved"},
	{slot: 3, id: 11, state: 2, begin: noLPOS, next: noLPOS, seq: 11},                        // data-less
	{slot: 4, id: 12, state: 2, begin: 624, next: 640, blockID: 99, seq: 12, text: "bad id"}, // block of another id: skipped
	{slot: 5, id: 6, state: 2, begin: 640, next: 656, seq: 6, text: "wrong slot"},            // DESC_INDEX(6) is 6: skipped
	{slot: 6, id: 14, state: 2, begin: 1008, next: 1048, seq: 14, ts: 3000000000, text: "wrapped text", level: 3, caller: 42},
}

func (k *kernel) writePrb(recs []prbRec) sk.Obj {
	const countBits, sizeBits = 3, 9
	descs := k.M.AllocPage(8 * uint64(k.S("prb_desc").Size))
	infos := k.M.AllocPage(8 * uint64(k.S("printk_info").Size))
	data := k.M.AllocPage(1 << sizeBits)
	rb := k.New("printk_ringbuffer").
		Set("desc_ring.count_bits", countBits).Set("desc_ring.descs", descs).Set("desc_ring.infos", infos).
		Set("text_data_ring.size_bits", sizeBits).Set("text_data_ring.data", data)
	for _, r := range recs {
		d := k.Obj("prb_desc", descs+uint64(r.slot)*uint64(k.S("prb_desc").Size))
		d.Set("state_var.counter", r.state<<62|r.id).Set("text_blk_lpos.begin", r.begin).Set("text_blk_lpos.next", r.next)
		in := k.Obj("printk_info", infos+uint64(r.slot)*uint64(k.S("printk_info").Size))
		in.Set("seq", r.seq).Set("ts_nsec", r.ts).Set("text_len", uint64(len(r.text))).Set("level", r.level).Set("flags", 2).Set("caller_id", uint64(r.caller))
		in.Str("dev_info.subsystem", r.subsys).Str("dev_info.device", r.dev)
		if r.begin&1 != 0 {
			continue
		}
		id := r.id
		if r.blockID != 0 {
			id = r.blockID
		}
		at := r.begin & (1<<sizeBits - 1)
		if r.begin>>sizeBits != r.next>>sizeBits {
			k.M.U64(data+at, id) // where it began
			at = 0
		}
		k.M.U64(data+at, id)
		k.M.Write(data+at+8, []byte(r.text))
	}
	return rb
}

func TestReadPrintkRing(t *testing.T) {
	k := newKernel(t, sk.LinuxLayout{})
	rb := k.writePrb(prbRecs)
	k.M.U64(k.M.Global(k.Syms, "prb", 8), rb.Addr)
	ring, err := ReadPrintkRing(k.p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range ring.Records {
		got = append(got, fmt.Sprintf("%d %d %d/%d %s %s/%s %v %q", r.Seq, r.TsNsec, r.Level, r.Flags, r.Caller(), r.Subsystem, r.Device, r.Finalized, r.Text))
	}
	want := []string{
		`7 1000 6/2 T1 / true "oldest"`,
		`8 1500000000 6/2 T1 / true "first line"`,
		`9 2000000000 4/2 C1 pci/+pci:0000:00:01.0 false "second\nline"`,
		`11 0 0/2 T0 / true ""`,
		`14 3000000000 3/2 T42 / true "wrapped text"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records\ngot  %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if ring.Skipped != 2 || ring.CountBits != 3 || ring.SizeBits != 9 || ring.Addr != rb.Addr {
		t.Errorf("ring %+v", ring)
	}
	var seqs []uint64
	for r, err := range PrbForEachRecord(k.p) {
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, r.Seq)
		if len(seqs) == 2 {
			break
		}
	}
	if fmt.Sprint(seqs) != "[7 8]" {
		t.Errorf("PrbForEachRecord: %v", seqs)
	}
}

func TestReadPrintkRingDamage(t *testing.T) {
	k := newKernel(t, sk.LinuxLayout{})
	if _, err := ReadPrintkRing(k.p); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("no prb (a kernel before 5.10): %v", err)
	}
	prb := k.M.Global(k.Syms, "prb", 8)
	if _, err := ReadPrintkRing(k.p); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("NULL prb: %v", err)
	}
	rb := k.writePrb(prbRecs)
	k.M.U64(prb, rb.Addr)
	rb.Set("desc_ring.count_bits", 30)
	if _, err := ReadPrintkRing(k.p); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", rb.Addr)) {
		t.Errorf("count_bits 30: %v", err)
	}
	rb.Set("desc_ring.count_bits", 3).Set("text_data_ring.size_bits", 2)
	if _, err := ReadPrintkRing(k.p); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("size_bits 2: %v", err)
	}
	rb.Set("text_data_ring.size_bits", 9)
	// The text or the infos on an absent page: the records on it are
	// lost, each page noted as damage; the descriptors absent: no ring.
	for _, member := range []string{"text_data_ring.data", "desc_ring.infos", "desc_ring.descs"} {
		a, _ := k.p.ReadU64(rb.At(member))
		k.M.Drop(a)
		ring, err := ReadPrintkRing(k.p)
		if member == "desc_ring.descs" {
			if !errors.Is(err, sk.ErrFault) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", a)) {
				t.Errorf("%s on an absent page: %v", member, err)
			}
			var werr error
			for _, err := range PrbForEachRecord(k.p) {
				werr = err
			}
			if !errors.Is(werr, sk.ErrFault) {
				t.Errorf("PrbForEachRecord with %s absent: %v", member, werr)
			}
			continue
		}
		if err != nil || len(ring.Records) != 0 {
			t.Errorf("%s on an absent page: %v, %d records", member, err, len(ring.Records))
		}
		found := false
		for _, d := range k.p.Damaged() {
			found = found || uint64(d.Addr) == a && errors.Is(d, sk.ErrFault)
		}
		if !found {
			t.Errorf("%s on an absent page: no damage noted at %#x in %v", member, a, k.p.Damaged())
		}
	}
}
