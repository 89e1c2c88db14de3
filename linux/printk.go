package linux

import (
	"encoding/binary"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/objects"
)

// The printk ring buffer of kernel/printk/printk_ringbuffer.{c,h}
// (5.10+, b6cf8b3f3312 "printk: add lockless ringbuffer"): a ring of
// descriptors (struct prb_desc: state_var, text_blk_lpos), an array of
// struct printk_info beside it (desc_ring.infos, 5.10: cfe2790b163a
// "printk: move printk_info into separate array"), and a ring of text
// data blocks, each starting with the id of its descriptor.

// Descriptor states: the top two bits of state_var (DESC_STATE).
const (
	descReserved  = 0
	descCommitted = 1
	descFinalized = 2
	descReusable  = 3
)

// lpos values of data-less records (FAILED_LPOS, NO_LPOS).
const (
	failedLPOS = 0x1
	noLPOS     = 0x3
)

// PrintkRecord is one record of the printk ring buffer.
type PrintkRecord struct {
	Seq      uint64
	TsNsec   uint64 // timestamp, ns since boot (local_clock)
	Level    uint8  // syslog level, 0 (emerg) to 7 (debug)
	Facility uint8  // syslog facility: 0 kernel, 1 user (/dev/kmsg), ...
	Flags    uint8  // LOG_NEWLINE (2), LOG_CONT (8)
	// CallerID is the printing task's pid, or the CPU (high bit set)
	// when printed from another context, as printk_caller_id.
	CallerID uint32
	Text     string
	// Subsystem and Device are dev_printk's (SUBSYSTEM=, DEVICE=), 5.10+.
	Subsystem, Device string
	// Finalized: the writer finished the record. A committed record that
	// is not finalized (the newest, still open to pr_cont) is not yet
	// shown by the kernel's readers.
	Finalized bool
}

// Caller renders CallerID as the kernel's print_caller does: "T123" for
// a task, "C1" for a CPU.
func (r PrintkRecord) Caller() string {
	if r.CallerID&0x80000000 != 0 {
		return fmt.Sprintf("C%d", r.CallerID&^0x80000000)
	}
	return fmt.Sprintf("T%d", r.CallerID)
}

// DmesgLines renders the record as dmesg prints it (record_print_text
// with printk_time): each line of the text prefixed with the time as
// "[%5lu.%06lu] ".
func (r PrintkRecord) DmesgLines() []string {
	prefix := fmt.Sprintf("[%5d.%06d] ", r.TsNsec/1e9, r.TsNsec%1e9/1e3)
	lines := strings.Split(r.Text, "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return lines
}

// prbLayout holds the offsets the reader needs, all from BTF.
type prbLayout struct {
	descSize, infoSize        int
	stateVar, begin, next     uint64
	infoInDesc                bool   // info embedded in prb_desc (5.10 development)
	infoOff                   uint64 // offset of info in prb_desc when embedded
	seq, ts, textLen, caller  uint64
	facility, flags, level    objects.MemberInfo
	subsystem, device         uint64
	subsystemLen, deviceLen   int
	haveDevInfo, haveFacility bool
}

func readPrbLayout(p *objects.Program) (prbLayout, error) {
	var l prbLayout
	descT, err := p.Type("struct prb_desc")
	if err != nil {
		return l, err
	}
	infoT, err := p.Type("struct printk_info")
	if err != nil {
		return l, err
	}
	if l.descSize, err = btf.Sizeof(descT); err != nil {
		return l, fmt.Errorf("sizeof(struct prb_desc): %v: %w", err, objects.ErrType)
	}
	if l.infoSize, err = btf.Sizeof(infoT); err != nil {
		return l, fmt.Errorf("sizeof(struct printk_info): %v: %w", err, objects.ErrType)
	}
	off := func(typ, path string) (uint64, error) {
		o, _, err := p.MemberOffset(typ, path)
		return o, err
	}
	// state_var is an atomic_long_t: its counter.
	if l.stateVar, err = off("struct prb_desc", "state_var.counter"); err != nil {
		return l, err
	}
	if l.begin, err = off("struct prb_desc", "text_blk_lpos.begin"); err != nil {
		return l, err
	}
	if l.next, err = off("struct prb_desc", "text_blk_lpos.next"); err != nil {
		return l, err
	}
	if o, err := off("struct prb_desc", "info"); err == nil {
		l.infoInDesc, l.infoOff = true, o
	}
	for _, f := range []struct {
		path string
		dst  *uint64
	}{{"seq", &l.seq}, {"ts_nsec", &l.ts}, {"text_len", &l.textLen}, {"caller_id", &l.caller}} {
		if *f.dst, err = off("struct printk_info", f.path); err != nil {
			return l, err
		}
	}
	if l.level, err = p.FindMember(infoT, "level"); err != nil {
		return l, err
	}
	if l.flags, err = p.FindMember(infoT, "flags"); err != nil {
		return l, err
	}
	if l.facility, err = p.FindMember(infoT, "facility"); err == nil {
		l.haveFacility = true
	}
	if o, t, err := p.MemberOffset("struct printk_info", "dev_info.subsystem"); err == nil {
		l.subsystem, l.haveDevInfo = o, true
		l.subsystemLen, _ = btf.Sizeof(t)
		if o, t, err := p.MemberOffset("struct printk_info", "dev_info.device"); err == nil {
			l.device = o
			l.deviceLen, _ = btf.Sizeof(t)
		} else {
			l.haveDevInfo = false
		}
	}
	return l, nil
}

// Bounds on the rings read at once: 64 MiB of text (CONFIG_LOG_BUF_SHIFT
// is at most 25, 32 MiB; log_buf_len= can ask for more) and 128 MiB of
// descriptors and infos. Larger sizes are taken for corruption.
const (
	maxPrbSizeBits   = 26
	maxPrbCountBits  = 24
	maxPrbDescsBytes = 128 << 20
)

// PrintkRing is the printk ring buffer read from memory.
type PrintkRing struct {
	Addr      uint64 // the struct printk_ringbuffer
	CountBits uint   // log2 of the descriptors
	SizeBits  uint   // log2 of the text data ring's bytes
	Records   []PrintkRecord
	// Skipped counts descriptors in the committed or finalized state
	// whose text could not be read (lost data, inconsistent positions,
	// or a data block holding another descriptor's id).
	Skipped int
}

// ReadPrintkRing reads every record of the kernel's printk ring buffer
// (*prb), sorted by sequence number, as prb_for_each_record would
// yield them from a stopped kernel: every descriptor in the committed or
// finalized state whose data block is intact. A record that is not (its
// descriptor or text garbage, or on a page the dump lacks) is skipped,
// counted in Skipped and noted in the Program's damage log, naming its
// descriptor's address; the rest are read. Errors wrap ErrNotFound
// (no prb: a kernel before 5.10), ErrCorrupt (implausible ring sizes,
// naming the address) or the memory's error.
func ReadPrintkRing(p *objects.Program) (*PrintkRing, error) {
	pv, err := p.Variable("prb")
	if err != nil {
		return nil, fmt.Errorf("printk ring buffer: %w", err)
	}
	rb, err := pv.Deref()
	if err != nil {
		return nil, fmt.Errorf("printk ring buffer: %w", err)
	}
	r, err := readPrintkRing(rb)
	if err != nil {
		return nil, fmt.Errorf("printk ring buffer at %#x: %w", rb.Addr(), err)
	}
	return r, nil
}

func readPrintkRing(rb objects.Value) (*PrintkRing, error) {
	p := rb.Program()
	l, err := readPrbLayout(p)
	if err != nil {
		return nil, err
	}
	u := func(path string) (uint64, error) {
		v, err := rb.Path(path)
		if err != nil {
			return 0, err
		}
		return v.Uint()
	}
	countBits, err := u("desc_ring.count_bits")
	if err != nil {
		return nil, err
	}
	descs, err := u("desc_ring.descs")
	if err != nil {
		return nil, err
	}
	var infos uint64
	if !l.infoInDesc {
		if infos, err = u("desc_ring.infos"); err != nil {
			return nil, err
		}
	}
	sizeBits, err := u("text_data_ring.size_bits")
	if err != nil {
		return nil, err
	}
	data, err := u("text_data_ring.data")
	if err != nil {
		return nil, err
	}
	if countBits > maxPrbCountBits || sizeBits > maxPrbSizeBits || sizeBits < 3 {
		return nil, fmt.Errorf("count_bits %d, size_bits %d are implausible: %w", countBits, sizeBits, objects.ErrCorrupt)
	}
	count := 1 << countBits
	size := uint64(1) << sizeBits
	if count*(l.descSize+l.infoSize) > maxPrbDescsBytes {
		return nil, fmt.Errorf("count_bits %d: %d descriptors are implausible: %w", countBits, count, objects.ErrCorrupt)
	}
	// The ring's parts are read page by page: a page the dump lacks
	// loses the records on it, not the ring.
	walk := fmt.Sprintf("printk ring at %#x", rb.Addr())
	damaged := func(addr uint64, object, expected, found string, err error) {
		p.NoteDamage(&objects.Damage{Walk: walk, Addr: objects.Hex(addr), Object: object, Expected: expected, Found: found,
			Err: err, Recovery: "skipped the record"})
	}
	descBuf := make([]byte, count*l.descSize)
	descBad := readPages(p, descBuf, descs)
	var infoBuf []byte
	var infoBad []pageFault
	if !l.infoInDesc {
		infoBuf = make([]byte, count*l.infoSize)
		infoBad = readPages(p, infoBuf, infos)
	}
	text := make([]byte, size)
	textBad := readPages(p, text, data)
	if len(descBad) == len(pagesOf(descs, len(descBuf))) {
		return nil, fmt.Errorf("read %d descriptors at %#x: %w", count, descs, descBad[0].err)
	}
	for _, f := range append(append(descBad, infoBad...), textBad...) {
		p.NoteDamage(&objects.Damage{Walk: walk, Addr: objects.Hex(f.addr), Object: "a page of the ring", Expected: "a readable page",
			Err: f.err, Recovery: "skipped the records on it"})
	}
	out := &PrintkRing{Addr: rb.Addr(), CountBits: uint(countBits), SizeBits: uint(sizeBits)}
	const flagsShift = 62 // DESC_FLAGS_SHIFT: BITS_PER_LONG - 2
	for i := range count {
		descAddr := descs + uint64(i*l.descSize)
		if faulted(descBad, descAddr, l.descSize) || !l.infoInDesc && faulted(infoBad, infos+uint64(i*l.infoSize), l.infoSize) {
			continue // noted with its page
		}
		d := descBuf[i*l.descSize:]
		sv := binary.LittleEndian.Uint64(d[l.stateVar:])
		state := sv >> flagsShift & 3
		id := sv &^ (3 << flagsShift)
		if state != descCommitted && state != descFinalized {
			continue
		}
		if id&uint64(count-1) != uint64(i) {
			out.Skipped++ // DESC_INDEX(id) must be the slot
			damaged(descAddr, fmt.Sprintf("descriptor %d", i), fmt.Sprintf("an id whose index is %d", i), fmt.Sprintf("id %#x", id), objects.ErrCorrupt)
			continue
		}
		var info []byte
		if l.infoInDesc {
			info = d[l.infoOff:]
		} else {
			info = infoBuf[i*l.infoSize:]
		}
		rec := PrintkRecord{
			Seq:       binary.LittleEndian.Uint64(info[l.seq:]),
			TsNsec:    binary.LittleEndian.Uint64(info[l.ts:]),
			Level:     uint8(l.level.Uint(info)),
			Flags:     uint8(l.flags.Uint(info)),
			CallerID:  binary.LittleEndian.Uint32(info[l.caller:]),
			Finalized: state == descFinalized,
		}
		if l.haveFacility {
			rec.Facility = uint8(l.facility.Uint(info))
		}
		if l.haveDevInfo {
			rec.Subsystem = objects.CString(info[l.subsystem : l.subsystem+uint64(l.subsystemLen)])
			rec.Device = objects.CString(info[l.device : l.device+uint64(l.deviceLen)])
		}
		textLen := uint64(binary.LittleEndian.Uint16(info[l.textLen:]))
		begin := binary.LittleEndian.Uint64(d[l.begin:])
		next := binary.LittleEndian.Uint64(d[l.next:])
		t, ok := prbData(text, sizeBits, begin, next, id)
		switch {
		case ok && len(textBad) > 0 && faulted(textBad, data+(begin&(size-1)), int(min(next-begin, size))):
			out.Skipped++ // noted with its page
			continue
		case !ok:
			out.Skipped++
			damaged(descAddr, fmt.Sprintf("descriptor %d (seq %d)", i, rec.Seq), fmt.Sprintf("a data block starting with id %#x", id),
				fmt.Sprintf("text_blk_lpos %#x..%#x", begin, next), objects.ErrCorrupt)
			continue
		case uint64(len(t)) < textLen:
			out.Skipped++
			damaged(descAddr, fmt.Sprintf("descriptor %d (seq %d)", i, rec.Seq), fmt.Sprintf("text_len at most the data block's %d bytes", len(t)),
				fmt.Sprintf("text_len %d", textLen), objects.ErrCorrupt)
			continue
		}
		rec.Text = string(t[:textLen])
		out.Records = append(out.Records, rec)
	}
	slices.SortFunc(out.Records, func(a, b PrintkRecord) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	return out, nil
}

// prbData returns a record's data from the text data ring, as the
// kernel's get_data: a data-less record (both lpos NO_LPOS) has empty
// text; a regular block lies in one wrap from begin to next; a wrapping
// block starts at the ring's beginning and ends at next. Each block
// starts with the id of its descriptor, which must be id.
func prbData(ring []byte, sizeBits, begin, next, id uint64) ([]byte, bool) {
	size := uint64(1) << sizeBits
	if begin&1 != 0 && next&1 != 0 { // BLK_DATALESS
		return nil, begin == noLPOS && next == noLPOS
	}
	wraps := func(lpos uint64) uint64 { return lpos >> sizeBits }
	var at, n uint64
	switch {
	case wraps(begin) == wraps(next) && begin < next:
		at, n = begin&(size-1), next-begin
	case wraps(begin+size) == wraps(next):
		at, n = 0, next&(size-1)
	default:
		return nil, false
	}
	if begin%8 != 0 || next%8 != 0 || n < 8 || at+n > size {
		return nil, false
	}
	blk := ring[at : at+n]
	if wraps(begin) != wraps(next) {
		// The id is also written where the block began, at the ring's end.
		if b := begin & (size - 1); b+8 <= size && binary.LittleEndian.Uint64(ring[b:]) != id {
			return nil, false
		}
	}
	if binary.LittleEndian.Uint64(blk) != id {
		return nil, false
	}
	return blk[8:], true
}

// PrbForEachRecord yields the records of the printk ring buffer in
// sequence order, as prb_for_each_record (see ReadPrintkRing).
func PrbForEachRecord(p *objects.Program) iter.Seq2[PrintkRecord, error] {
	return func(yield func(PrintkRecord, error) bool) {
		r, err := ReadPrintkRing(p)
		if err != nil {
			yield(PrintkRecord{}, err)
			return
		}
		for _, rec := range r.Records {
			if !yield(rec, nil) {
				return
			}
		}
	}
}

// DmesgRecord is a record as dmesg --json shows it.
type DmesgRecord struct {
	Seq       uint64 `json:"seq"`
	Timestamp uint64 `json:"timestamp_ns" js:"bigint"`
	Level     uint8  `json:"level"`
	Facility  uint8  `json:"facility"`
	Text      string `json:"text"`
	// Caller is "T<pid>" or "C<cpu>".
	Caller    string `json:"caller"`
	Subsystem string `json:"subsystem,omitempty"`
	Device    string `json:"device,omitempty"`
	Finalized bool   `json:"finalized"`
}

// Dmesg returns the records as dmesg --json shows them.
func (r *PrintkRing) Dmesg() []DmesgRecord {
	out := make([]DmesgRecord, 0, len(r.Records))
	for _, x := range r.Records {
		out = append(out, DmesgRecord{Seq: x.Seq, Timestamp: x.TsNsec, Level: x.Level, Facility: x.Facility,
			Text: x.Text, Caller: x.Caller(), Subsystem: x.Subsystem, Device: x.Device, Finalized: x.Finalized})
	}
	return out
}

// pageFault is a page of a region that could not be read.
type pageFault struct {
	addr uint64
	err  error
}

// pagesOf lists the page-aligned pieces of [addr, addr+n).
func pagesOf(addr uint64, n int) []uint64 {
	var out []uint64
	for a := addr; a < addr+uint64(n); a = (a &^ 4095) + 4096 {
		out = append(out, a)
	}
	return out
}

// readPages reads buf from addr a page at a time, leaving zeros where a
// page cannot be read, and returns those pages.
func readPages(p *objects.Program, buf []byte, addr uint64) []pageFault {
	if p.Read(buf, addr) == nil {
		return nil
	}
	var bad []pageFault
	for _, a := range pagesOf(addr, len(buf)) {
		end := min((a&^4095)+4096, addr+uint64(len(buf)))
		piece := buf[a-addr : end-addr]
		if err := p.Read(piece, a); err != nil {
			clear(piece)
			bad = append(bad, pageFault{a, err})
		}
	}
	return bad
}

// faulted says whether [addr, addr+n) touches a page in bad.
func faulted(bad []pageFault, addr uint64, n int) bool {
	for _, f := range bad {
		if f.addr < addr+uint64(n) && addr < (f.addr&^4095)+4096 {
			return true
		}
	}
	return false
}
