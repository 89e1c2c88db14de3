package vmcore

// Builders of small synthetic dumps, written from the format specs
// (makedumpfile's diskdump_mod.h and makedumpfile.h, the ELF gABI, QEMU's
// dump.c) — independent of the parsers under test. They seed the fuzz
// corpora too.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

const synthPage = 4096

// synthKernel is a fake machine: physical memory with x86-64 page tables.
type synthKernel struct {
	mem        []byte
	levels     int
	root       uint64 // paddr of the top-level table
	physBase   uint64
	kaslr      uint64
	pageOffset uint64
	vmalloc    uint64 // a 4 KiB mapping of vmallocPhys
	vmallocPA  uint64
	next       uint64 // next free page for tables
}

// Layout of the synthetic machine's 16 MiB.
const (
	synthMemSize   = 16 << 20
	synthTextPhys  = 4 << 20 // kernel text loaded here (phys_base + 16 MiB = ... see newSynthKernel)
	synthTableBase = 1 << 20 // page tables from 1 MiB
)

func newSynthKernel(levels int) *synthKernel {
	k := &synthKernel{mem: make([]byte, synthMemSize), levels: levels, next: synthTableBase}
	// Fill memory with a recognisable pattern: each 8 bytes hold their
	// physical address XOR a constant, except the page tables.
	for a := 0; a < len(k.mem); a += 8 {
		binary.LittleEndian.PutUint64(k.mem[a:], uint64(a)^0x5a5a5a5a00000000)
	}
	// Some zero pages, for zero-page sharing and dump levels.
	for a := 8 << 20; a < 9<<20; a++ {
		k.mem[a] = 0
	}
	// Pages with a 16-byte period (LZO-compressible by lzoLiteralCopy).
	for a := 9 << 20; a < 9<<20+64*synthPage; a++ {
		k.mem[a] = byte(a%16) ^ byte(a/synthPage)
	}
	clear(k.mem[synthTableBase : synthTableBase+256*synthPage])
	k.root = k.alloc()
	// Kernel text: __START_KERNEL + kaslr maps to phys 4 MiB with 2 MiB
	// pages; phys_base = 4 MiB - 16 MiB (wraps, as the kernel's does when
	// loaded below its link address).
	k.kaslr = 0x2c000000
	textV := uint64(startKernel) + k.kaslr
	k.physBase = synthTextPhys - (textV - startKernelMap)
	for i := uint64(0); i < 2; i++ {
		k.mapPage(textV+i<<21, synthTextPhys+i<<21, 21)
	}
	// Direct map: one 1 GiB page at a randomized base.
	if levels == 5 {
		k.pageOffset = pageOffsetL5 + 0x123<<30
	} else {
		k.pageOffset = pageOffsetL4 + 0x15<<30
	}
	k.mapPage(k.pageOffset, 0, 30)
	// vmalloc: 4 KiB pages, the second one absent.
	k.vmalloc = 0xffffc90000123000
	if levels == 5 {
		k.vmalloc = 0xffa0000000123000
	}
	k.vmallocPA = 10 << 20
	k.mapPage(k.vmalloc, k.vmallocPA+0x5000, 12)
	k.mapPage(k.vmalloc+2*synthPage, k.vmallocPA, 12)
	return k
}

func (k *synthKernel) alloc() uint64 {
	p := k.next
	k.next += synthPage
	return p
}

func (k *synthKernel) mapPage(v, p uint64, shift uint) {
	table := k.root
	for level := k.levels; level >= 1; level-- {
		s := uint(12 + 9*(level-1))
		ea := table + (v>>s&511)*8
		if s == shift {
			e := p | ptePresent | 2
			if shift > 12 {
				e |= ptePSE
			}
			binary.LittleEndian.PutUint64(k.mem[ea:], e)
			return
		}
		e := binary.LittleEndian.Uint64(k.mem[ea:])
		if e&ptePresent == 0 {
			e = k.alloc() | ptePresent | 2
			binary.LittleEndian.PutUint64(k.mem[ea:], e)
		}
		table = e & pteAddrMask
	}
}

// vmcoreinfo returns VMCOREINFO text naming this machine's layout.
func (k *synthKernel) vmcoreinfo() string {
	l5 := 0
	if k.levels == 5 {
		l5 = 1
	}
	rootV := k.root - k.physBase + startKernelMap
	return fmt.Sprintf("OSRELEASE=6.1.0-synthetic\nBUILD-ID=0123456789abcdef0123456789abcdef01234567\nPAGESIZE=4096\n"+
		"SYMBOL(init_uts_ns)=ffffffffae012340\nOFFSET(uts_namespace.name)=4\nSYMBOL(swapper_pg_dir)=%x\nSYMBOL(_stext)=%x\n"+
		"NUMBER(phys_base)=%d\nSYMBOL(init_top_pgt)=%x\nNUMBER(pgtable_l5_enabled)=%d\nKERNELOFFSET=%x\n"+
		"NUMBER(KERNEL_IMAGE_SIZE)=1073741824\nNUMBER(sme_mask)=0\nSIZE(page)=64\nLENGTH(node_data)=1024\nCRASHTIME=1700000000\n",
		rootV, uint64(startKernel)+k.kaslr, int64(k.physBase), rootV, l5, k.kaslr)
}

// synthNotes builds an ELF note area: NT_PRSTATUS and QEMU notes per CPU,
// then VMCOREINFO.
func synthNotes(ncpu int, vmcoreinfo string, cr3, cr4 uint64) []byte {
	var b bytes.Buffer
	put := func(name string, typ uint32, desc []byte) {
		nm := append([]byte(name), 0)
		binary.Write(&b, binary.LittleEndian, [3]uint32{uint32(len(nm)), uint32(len(desc)), typ})
		b.Write(nm)
		b.Write(make([]byte, align4(uint64(len(nm)))-uint64(len(nm))))
		b.Write(desc)
		b.Write(make([]byte, align4(uint64(len(desc)))-uint64(len(desc))))
	}
	for i := range ncpu {
		pr := make([]byte, prstatusSize)
		binary.LittleEndian.PutUint32(pr[32:], uint32(100+i))
		for r := range 27 {
			binary.LittleEndian.PutUint64(pr[112+8*r:], synthReg(i, r))
		}
		put("CORE", ntPrstatus, pr)
	}
	for i := range ncpu {
		q := make([]byte, 440)
		binary.LittleEndian.PutUint32(q[0:], 1)
		binary.LittleEndian.PutUint32(q[4:], 440)
		binary.LittleEndian.PutUint64(q[136:], 0xdead0000+uint64(i)) // rip
		binary.LittleEndian.PutUint64(q[392+3*8:], cr3)
		binary.LittleEndian.PutUint64(q[392+4*8:], cr4)
		binary.LittleEndian.PutUint64(q[432:], 0xffff888000000000+uint64(i)<<20)
		put("QEMU", 0, q)
	}
	if vmcoreinfo != "" {
		put("VMCOREINFO", 0, []byte(vmcoreinfo))
	}
	return b.Bytes()
}

// synthReg is register r (user_regs_struct order) of CPU i.
func synthReg(i, r int) uint64 { return 0xffffffff81000000 + uint64(i)<<16 + uint64(r)*8 }

// elfSeg describes a PT_LOAD to write.
type elfSeg struct {
	paddr, vaddr  uint64
	filesz, memsz uint64
}

// buildELF writes an ELF64 core with notes and the given segments, data
// from mem at each segment's paddr.
func buildELF(mem []byte, notes []byte, segs []elfSeg) []byte {
	le := binary.LittleEndian
	phnum := 1 + len(segs)
	hdr := make([]byte, 64+56*phnum)
	copy(hdr, "\x7fELF\x02\x01\x01")
	le.PutUint16(hdr[16:], etCore)
	le.PutUint16(hdr[18:], emX86_64)
	le.PutUint32(hdr[20:], 1)
	le.PutUint64(hdr[32:], 64)
	le.PutUint16(hdr[52:], 64)
	le.PutUint16(hdr[54:], 56)
	le.PutUint16(hdr[56:], uint16(phnum))
	off := uint64(len(hdr))
	ph := func(i int, typ uint32, o, v, p, fs, ms uint64) {
		b := hdr[64+56*i:]
		le.PutUint32(b, typ)
		le.PutUint64(b[8:], o)
		le.PutUint64(b[16:], v)
		le.PutUint64(b[24:], p)
		le.PutUint64(b[32:], fs)
		le.PutUint64(b[40:], ms)
	}
	ph(0, ptNote, off, 0, 0, uint64(len(notes)), uint64(len(notes)))
	out := append(hdr, notes...)
	off += uint64(len(notes))
	for i, s := range segs {
		ph(i+1, ptLoad, off, s.vaddr, s.paddr, s.filesz, s.memsz)
		out = append(out, mem[s.paddr:s.paddr+s.filesz]...)
		off += s.filesz
	}
	copy(out, hdr)
	return out
}

// kdumpOpts describes a kdump file to build.
type kdumpOpts struct {
	comp      Compression
	excluded  func(pfn uint64) bool // pages left out (dump level)
	notes     []byte
	vmcinfo   string
	flat      bool
	shuffle   bool // write flattened records out of order
	overwrite bool // write a bogus header first, the real one last
	chunk     int  // flattened record size (default 16 KiB)
}

func compressPage(t testing.TB, c Compression, page []byte) []byte {
	switch c {
	case CompressZlib:
		var b bytes.Buffer
		w, _ := zlib.NewWriterLevel(&b, 1)
		w.Write(page)
		w.Close()
		return b.Bytes()
	case CompressZstd:
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
		return e.EncodeAll(page, nil)
	case CompressSnappy:
		return snappy.Encode(nil, page)
	case CompressLZO:
		return lzoLiteralCopy(page)
	}
	return page
}

// lzoLiteralCopy encodes page as LZO1X: when the page repeats with a
// period of 16 or less bytes after its first 16, a 16-byte literal and one
// M3 copy; else nil (store raw). LZO1X stream format per
// Documentation/staging/lzo.rst.
func lzoLiteralCopy(page []byte) []byte {
	const lit = 16
	for i := lit; i < len(page); i++ {
		if page[i] != page[i-lit] {
			return nil
		}
	}
	var b []byte
	b = append(b, 17+lit) // first byte >= 22: copy byte-17 literals, state 4
	b = append(b, page[:lit]...)
	n := len(page) - lit // M3 length = 2 + 31 + 255*zeros + last
	rest := n - 2 - 31
	b = append(b, 0x20)
	for rest > 255 {
		b = append(b, 0)
		rest -= 255
	}
	b = append(b, byte(rest))
	d := uint16((lit - 1) << 2) // distance-1, state 0
	b = append(b, byte(d), byte(d>>8))
	b = append(b, 0x11, 0, 0) // M4 end of stream
	return b
}

// buildKdump writes a kdump-compressed file of mem (one pfn per page,
// every page valid), following makedumpfile's write_kdump_header and
// write_kdump_pages: zero pages share one descriptor and one copy.
func buildKdump(t testing.TB, mem []byte, o kdumpOpts) []byte {
	le := binary.LittleEndian
	maxMapnr := uint64(len(mem) / synthPage)
	bitmapBytes := (maxMapnr + 7) / 8
	bitmapBlocks := (2*bitmapBytes + synthPage - 1) / synthPage
	subHdr := make([]byte, rawSubHeaderSize)
	viOff := 0
	if o.vmcinfo != "" {
		viOff = rawSubHeaderSize + len(o.notes)
	}
	subBlocks := (rawSubHeaderSize + len(o.notes) + len(o.vmcinfo) + synthPage - 1) / synthPage
	var status uint32
	switch o.comp {
	case CompressZlib:
		status = dumpCompressedZlib
	case CompressLZO:
		status = dumpCompressedLZO
	case CompressSnappy:
		status = dumpCompressedSnappy
	case CompressZstd:
		status = dumpCompressedZstd
	}
	h := make([]byte, synthPage)
	copy(h, kdumpSignature)
	le.PutUint32(h[8:], 6)
	copy(h[12+65*2:], "6.1.0-synthetic")
	le.PutUint32(h[424:], status)
	le.PutUint32(h[428:], synthPage)
	le.PutUint32(h[432:], uint32(subBlocks))
	le.PutUint32(h[436:], uint32(bitmapBlocks))
	le.PutUint32(h[440:], uint32(maxMapnr))
	le.PutUint32(h[460:], 2)
	le.PutUint64(subHdr[0:], 0)
	le.PutUint32(subHdr[8:], 31)
	if len(o.notes) > 0 {
		le.PutUint64(subHdr[48:], synthPage+rawSubHeaderSize)
		le.PutUint64(subHdr[56:], uint64(len(o.notes)))
	}
	if viOff != 0 {
		le.PutUint64(subHdr[32:], uint64(synthPage+viOff))
		le.PutUint64(subHdr[40:], uint64(len(o.vmcinfo)))
	}
	le.PutUint64(subHdr[96:], maxMapnr)
	sub := make([]byte, subBlocks*synthPage)
	copy(sub, bytes.Join([][]byte{subHdr, o.notes, []byte(o.vmcinfo)}, nil))

	bm := make([]byte, bitmapBlocks*synthPage)
	var dumped []uint64
	for pfn := range maxMapnr {
		bm[pfn/8] |= 1 << (pfn % 8)
		if o.excluded == nil || !o.excluded(pfn) {
			bm[bitmapBlocks*synthPage/2+pfn/8] |= 1 << (pfn % 8)
			dumped = append(dumped, pfn)
		}
	}
	descOff := uint64(1+subBlocks+int(bitmapBlocks)) * synthPage
	dataOff := descOff + uint64(len(dumped))*rawPageDescSize
	descs := make([]byte, len(dumped)*rawPageDescSize)
	// The shared zero page comes first, raw (makedumpfile's pd_zero).
	data := make([]byte, synthPage)
	zeroOff := dataOff
	for i, pfn := range dumped {
		page := mem[pfn*synthPage : (pfn+1)*synthPage]
		d := descs[i*rawPageDescSize:]
		if allZero(page) {
			le.PutUint64(d, zeroOff)
			le.PutUint32(d[8:], synthPage)
			continue
		}
		off := dataOff + uint64(len(data))
		c := compressPage(t, o.comp, page)
		var flags uint32
		if o.comp != CompressNone && c != nil && len(c) < synthPage {
			flags = status
		} else {
			c = page
		}
		data = append(data, c...)
		le.PutUint64(d, off)
		le.PutUint32(d[8:], uint32(len(c)))
		le.PutUint32(d[12:], flags)
	}
	file := bytes.Join([][]byte{h, sub, bm, descs, data}, nil)
	if !o.flat {
		return file
	}
	// Flattened: records of chunk bytes of the file.
	chunk := o.chunk
	if chunk == 0 {
		chunk = 16 << 10
	}
	type rec struct {
		off  int
		data []byte
	}
	var recs []rec
	for off := 0; off < len(file); off += chunk {
		recs = append(recs, rec{off, file[off:min(off+chunk, len(file))]})
	}
	if o.shuffle {
		r := rand.New(rand.NewPCG(1, 2))
		r.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	}
	if o.overwrite {
		bogus := bytes.Repeat([]byte{0xee}, 600)
		recs = append([]rec{{0, bogus}}, recs...)
		recs = append(recs, rec{0, file[:rawDiskDumpHeaderSize]})
	}
	var out bytes.Buffer
	fh := make([]byte, flatHeaderSize)
	copy(fh, flatSignature)
	binary.BigEndian.PutUint64(fh[16:], flatTypeFlat)
	binary.BigEndian.PutUint64(fh[24:], flatVersion)
	out.Write(fh)
	for _, r := range recs {
		binary.Write(&out, binary.BigEndian, [2]int64{int64(r.off), int64(len(r.data))})
		out.Write(r.data)
	}
	binary.Write(&out, binary.BigEndian, [2]int64{-1, -1})
	return out.Bytes()
}

// writeTemp writes b to a file in t's temp dir.
func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o400); err != nil {
		t.Fatal(err)
	}
	return p
}

// synthDumps builds every format of one synthetic machine. Pages of the
// filtered variants are excluded where excludedPFN says.
type synthCase struct {
	name     string
	data     []byte
	filtered bool
}

func excludedPFN(pfn uint64) bool {
	// The zero pages at 8 MiB and a run of 300 pages at 12 MiB (long
	// enough for makedumpfile -E to cut the segment).
	return (pfn >= 0x800 && pfn < 0x900) || (pfn >= 0xc00 && pfn < 0xc00+300)
}

func synthDumps(t testing.TB, k *synthKernel) []synthCase {
	cr4 := uint64(0)
	if k.levels == 5 {
		cr4 = cr4LA57
	}
	notes := synthNotes(2, k.vmcoreinfo(), k.root, cr4)
	notesNoVI := synthNotes(2, "", k.root, cr4)
	full := []elfSeg{{paddr: 0, vaddr: k.pageOffset, filesz: synthMemSize, memsz: synthMemSize}}
	// makedumpfile -E style: segments split at the long excluded run, the
	// excluded tail counted in p_memsz only; the short zero run at 8 MiB
	// (256 pages: exactly PFN_EXCLUDED) is also cut.
	cut := []elfSeg{
		{paddr: 0, filesz: 8 << 20, memsz: 8<<20 + 256*synthPage},
		{paddr: 8<<20 + 256*synthPage, filesz: (12 << 20) - (8<<20 + 256*synthPage), memsz: (12 << 20) - (8<<20 + 256*synthPage) + 300*synthPage},
		{paddr: 12<<20 + 300*synthPage, filesz: synthMemSize - (12<<20 + 300*synthPage), memsz: synthMemSize - (12<<20 + 300*synthPage)},
	}
	out := []synthCase{
		{name: "elf", data: buildELF(k.mem, notes, full)},
		{name: "elf-noinfo", data: buildELF(k.mem, notesNoVI, full)},
		{name: "elf-d31", data: buildELF(k.mem, notes, cut), filtered: true},
	}
	for _, c := range []Compression{CompressNone, CompressZlib, CompressLZO, CompressSnappy, CompressZstd} {
		out = append(out,
			synthCase{name: "kdump-" + c.String(), data: buildKdump(t, k.mem, kdumpOpts{comp: c, notes: notes})},
			synthCase{name: "kdump-" + c.String() + ".flat", data: buildKdump(t, k.mem, kdumpOpts{comp: c, notes: notes, flat: true, shuffle: true, overwrite: true, chunk: 5000})},
		)
	}
	out = append(out,
		synthCase{name: "kdump-zlib-vmcoreinfo-offset", data: buildKdump(t, k.mem, kdumpOpts{comp: CompressZlib, notes: notesNoVI, vmcinfo: k.vmcoreinfo()})},
		synthCase{name: "kdump-zlib-d31", data: buildKdump(t, k.mem, kdumpOpts{comp: CompressZlib, notes: notes, excluded: excludedPFN}), filtered: true},
		synthCase{name: "kdump-lzo-d31.flat", data: buildKdump(t, k.mem, kdumpOpts{comp: CompressLZO, notes: notes, excluded: excludedPFN, flat: true, shuffle: true}), filtered: true},
	)
	return out
}
