package bpfrun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
)

// The contexts of test runs on a synthetic kernel: what a program reads
// at the kernel's offsets is what net/bpf/test_run.c puts there, and
// data_out and ctx_out are what it copies back.

// off is the offset of a member of a kernel struct, from BTF.
func (k *synth) off(typ, path string) int16 {
	o, _, err := k.Program(k.t).MemberOffset(typ, path)
	if err != nil {
		k.t.Fatal(err)
	}
	return int16(o)
}

// frame is an Ethernet frame to dst with an IPv4 header from 10.0.0.1 to
// 10.0.0.2 and payload bytes 0x40, 0x41, ...
func frame(dst [6]byte, n int) []byte {
	b := make([]byte, n)
	copy(b, dst[:])
	copy(b[6:], []byte{2, 0, 0, 0, 0, 1})
	b[12], b[13] = 8, 0
	b[14] = 0x45
	copy(b[26:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	for i := 34; i < n; i++ {
		b[i] = byte(0x40 + i - 34)
	}
	return b
}

var lo = [6]byte{}

func TestSocketFilterContext(t *testing.T) {
	k := newSynth(t)
	r := k.replayer()
	// r0 = the first 4 bytes of the network header (bpf_skb_load_bytes)
	// + skb->len + skb->mark; skb->mark = 0x55; skb->cb[0] += 1.
	cb := k.off("struct sk_buff", "cb") + k.off("struct qdisc_skb_cb", "data")
	insns := prog(
		movX(r6, r1),
		mov(r2, 0), movX(r3, r10), add(r3, -8), mov(r4, 4), call("bpf_skb_load_bytes"),
		movX(r7, r0),
		ldx(bpfinsn.SizeW, r0, r10, -8),
		ldx(bpfinsn.SizeW, r1, r6, k.off("struct sk_buff", "len")), I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAdd | bpfinsn.SrcX, Dst: r0, Src: r1},
		ldx(bpfinsn.SizeW, r1, r6, k.off("struct sk_buff", "mark")), I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAdd | bpfinsn.SrcX, Dst: r0, Src: r1},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAdd | bpfinsn.SrcX, Dst: r0, Src: r7},
		st(bpfinsn.SizeW, r6, k.off("struct sk_buff", "mark"), 0x55),
		ldx(bpfinsn.SizeB, r1, r6, cb), add(r1, 1), stx(bpfinsn.SizeB, r6, r1, cb),
		exit())
	p := k.load(r, 1, insns)
	data := frame(lo, 60)
	ctxIn := make([]byte, k.S("__sk_buff").Size)
	binary.LittleEndian.PutUint32(ctxIn[k.off("struct __sk_buff", "mark"):], 0x1000)
	ctxIn[k.off("struct __sk_buff", "cb")] = 9
	res, err := r.Run(p, RunOptions{DataIn: data, CtxIn: ctxIn, Repeat: 3}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The program sees the packet after the Ethernet header (len 46),
	// the ctx_in mark on its first run and its own 0x55 after.
	ip := binary.LittleEndian.Uint32(data[14:])
	if want := ip + 46 + 0x55; res.Retval != want {
		t.Errorf("retval %#x, want %#x (3 runs on one skb)", res.Retval, want)
	}
	// data_out: the Ethernet header pushed back and zeroed.
	want := append(make([]byte, 14), data[14:]...)
	if !bytes.Equal(res.DataOut, want) {
		t.Errorf("data_out\n% x\nwant\n% x", res.DataOut, want)
	}
	u := res.CtxOut
	if m := binary.LittleEndian.Uint32(u[k.off("struct __sk_buff", "mark"):]); m != 0x55 {
		t.Errorf("ctx_out mark %#x", m)
	}
	if c := u[k.off("struct __sk_buff", "cb")]; c != 12 {
		t.Errorf("ctx_out cb[0] %d, want 9 + 3", c)
	}
	if w := binary.LittleEndian.Uint32(u[k.off("struct __sk_buff", "wire_len"):]); w != 46 {
		t.Errorf("ctx_out wire_len %d, want the skb's 46", w)
	}
	if ifx := binary.LittleEndian.Uint32(u[k.off("struct __sk_buff", "ifindex"):]); ifx != 1 {
		t.Errorf("ctx_out ifindex %d, want the loopback's", ifx)
	}

	// What the kernel refuses.
	bad := append([]byte(nil), ctxIn...)
	bad[k.off("struct __sk_buff", "len")] = 1
	for _, c := range []struct {
		what string
		ro   RunOptions
	}{
		{"data shorter than an Ethernet header", RunOptions{DataIn: data[:13]}},
		{"a __sk_buff field not taken", RunOptions{DataIn: data, CtxIn: bad}},
		{"a longer ctx_in with a non-zero byte", RunOptions{DataIn: data, CtxIn: append(append([]byte(nil), ctxIn...), 1)}},
	} {
		if _, err := r.Run(p, c.ro, Options{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", c.what, err)
		}
	}
}

func TestSkbHelpers(t *testing.T) {
	k := newSynth(t)
	r := k.replayer()
	// bpf_skb_load_bytes past the end fails, clearing the buffer;
	// bpf_skb_store_bytes writes the packet.
	insns := prog(
		movX(r6, r1),
		st(bpfinsn.SizeDW, r10, -8, -1),
		movX(r1, r6), mov(r2, 44), movX(r3, r10), add(r3, -8), mov(r4, 4), call("bpf_skb_load_bytes"),
		movX(r7, r0),
		ldx(bpfinsn.SizeDW, r8, r10, -8),
		st(bpfinsn.SizeW, r10, -16, 0x04030201),
		movX(r1, r6), mov(r2, 2), movX(r3, r10), add(r3, -16), mov(r4, 2), mov(r5, 0), call("bpf_skb_store_bytes"),
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAdd | bpfinsn.SrcX, Dst: r7, Src: r0},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAnd | bpfinsn.SrcK, Dst: r7, Imm: 0xff},
		movX(r0, r8), I{Code: bpfinsn.ClassALU64 | bpfinsn.OpRsh | bpfinsn.SrcK, Dst: r0, Imm: 16},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpOr | bpfinsn.SrcX, Dst: r0, Src: r7},
		exit())
	p := k.load(r, 1, insns)
	data := frame(lo, 60)
	res, err := r.Run(p, RunOptions{DataIn: data}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 44 + 4 > 46: -EFAULT (0x...f2) and the buffer's 4 bytes cleared
	// (the 8 bytes were all 0xff: now 0xffffffff00000000, >> 16), then
	// the store's 0.
	if want := uint32(0xffff0000) | uint32(byte(errno(eFAULT))); res.Retval != want {
		t.Errorf("retval %#x, want %#x", res.Retval, want)
	}
	if got := res.DataOut[14+2 : 14+4]; !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("stored bytes: % x", got)
	}
}

func TestTCContext(t *testing.T) {
	k := newSynth(t)
	r := k.replayer()
	// A tc program gets the Ethernet header, and data_end in the cb.
	de := k.off("struct sk_buff", "cb") + k.off("struct bpf_skb_data_end", "data_end")
	insns := prog(
		ldx(bpfinsn.SizeDW, r2, r1, k.off("struct sk_buff", "data")),
		ldx(bpfinsn.SizeDW, r3, r1, de),
		movX(r0, r3), I{Code: bpfinsn.ClassALU64 | bpfinsn.OpSub | bpfinsn.SrcX, Dst: r0, Src: r2},
		ldx(bpfinsn.SizeW, r4, r1, k.off("struct sk_buff", "len")),
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpLsh | bpfinsn.SrcK, Dst: r4, Imm: 16},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpOr | bpfinsn.SrcX, Dst: r0, Src: r4},
		ldx(bpfinsn.SizeB, r5, r2, 0), // the first byte of the destination MAC
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpLsh | bpfinsn.SrcK, Dst: r5, Imm: 24},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpOr | bpfinsn.SrcX, Dst: r0, Src: r5},
		exit())
	p := k.load(r, bpf.MapTypeArray+1, insns) // BPF_PROG_TYPE_SCHED_CLS is 3
	dst := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	data := frame(dst, 60)
	res, err := r.Run(p, RunOptions{DataIn: data}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := uint32(0xff<<24 | 60<<16 | 60); res.Retval != want {
		t.Errorf("retval %#x, want %#x", res.Retval, want)
	}
	if !bytes.Equal(res.DataOut, data) {
		t.Errorf("data_out of a tc program: % x", res.DataOut)
	}
}

func TestXDPContext(t *testing.T) {
	k := newSynth(t)
	r := k.replayer()
	xd, xde, xdm := k.off("struct xdp_buff", "data"), k.off("struct xdp_buff", "data_end"), k.off("struct xdp_buff", "data_meta")
	// adjust_head(+4), adjust_tail(+8), adjust_meta(-4): r0 = the errors'
	// sum << 16 | (data_end - data) << 8 | (data - data_meta).
	insns := prog(
		movX(r6, r1),
		mov(r2, 4), call("bpf_xdp_adjust_head"), movX(r7, r0),
		movX(r1, r6), mov(r2, 8), call("bpf_xdp_adjust_tail"), I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAdd | bpfinsn.SrcX, Dst: r7, Src: r0},
		movX(r1, r6), mov(r2, -4), call("bpf_xdp_adjust_meta"), I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAdd | bpfinsn.SrcX, Dst: r7, Src: r0},
		movX(r1, r6), mov(r2, -4000), call("bpf_xdp_adjust_head"), // beyond the headroom: -EINVAL
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpLsh | bpfinsn.SrcK, Dst: r0, Imm: 24},
		ldx(bpfinsn.SizeDW, r2, r6, xd), ldx(bpfinsn.SizeDW, r3, r6, xde), ldx(bpfinsn.SizeDW, r4, r6, xdm),
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpSub | bpfinsn.SrcX, Dst: r3, Src: r2},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpSub | bpfinsn.SrcX, Dst: r2, Src: r4},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpLsh | bpfinsn.SrcK, Dst: r3, Imm: 8},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpLsh | bpfinsn.SrcK, Dst: r7, Imm: 16},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpOr | bpfinsn.SrcX, Dst: r7, Src: r3},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpOr | bpfinsn.SrcX, Dst: r7, Src: r2},
		I{Code: bpfinsn.ClassALU | bpfinsn.OpMov | bpfinsn.SrcX, Dst: r7, Src: r7},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpOr | bpfinsn.SrcX, Dst: r7, Src: r0},
		movX(r0, r7),
		exit())
	p := k.load(r, 6, insns)
	data := frame(lo, 60)
	ctxIn := make([]byte, k.S("xdp_md").Size)
	binary.LittleEndian.PutUint32(ctxIn[k.off("struct xdp_md", "data_end"):], 60)
	res, err := r.Run(p, RunOptions{DataIn: data, CtxIn: ctxIn}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 60 - 4 + 8 = 64 bytes of packet, 4 of metadata; -EINVAL's low byte.
	if want := uint32(byte(errno(eINVAL)))<<24 | 64<<8 | 4; res.Retval != want {
		t.Errorf("retval %#x, want %#x", res.Retval, want)
	}
	// data_out is from data_meta: the 4 metadata bytes (the first 4 of
	// the frame, left where they were), the frame from byte 4, 8 zeros.
	want := append(append(append([]byte(nil), data[0:4]...), data[4:]...), make([]byte, 8)...)
	if !bytes.Equal(res.DataOut, want) {
		t.Errorf("data_out\n% x\nwant\n% x", res.DataOut, want)
	}
	if d, e := binary.LittleEndian.Uint32(res.CtxOut[k.off("struct xdp_md", "data"):]), binary.LittleEndian.Uint32(res.CtxOut[k.off("struct xdp_md", "data_end"):]); d != 4 || e != 68 {
		t.Errorf("ctx_out data %d data_end %d, want 4 and 68", d, e)
	}
	// xdp_md.data is the metadata's length, at most 32 and a multiple
	// of 4.
	binary.LittleEndian.PutUint32(ctxIn[k.off("struct xdp_md", "data"):], 6)
	if _, err := r.Run(p, RunOptions{DataIn: data, CtxIn: ctxIn}, Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("metadata of 6 bytes: %v", err)
	}
}

func TestRawTracepointContext(t *testing.T) {
	k := newSynth(t)
	r := k.replayer()
	// r0 = args[1] + args[2] (bpf_prog_test_run_raw_tp: ctx_in is the
	// u64 arguments).
	insns := prog(ldx(bpfinsn.SizeDW, r0, r1, 8), ldx(bpfinsn.SizeDW, r2, r1, 16),
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAdd | bpfinsn.SrcX, Dst: r0, Src: r2}, exit())
	p := k.load(r, 17, insns)
	args := make([]byte, 24)
	binary.LittleEndian.PutUint64(args[8:], 40)
	binary.LittleEndian.PutUint64(args[16:], 2)
	res, err := r.Run(p, RunOptions{CtxIn: args}, Options{})
	if err != nil || res.Retval != 42 || res.DataOut != nil || res.CtxOut != nil {
		t.Errorf("raw tracepoint: %+v, %v", res, err)
	}
	for _, ro := range []RunOptions{{CtxIn: args, DataIn: []byte{1}}, {CtxIn: make([]byte, 13*8)}} {
		if _, err := r.Run(p, ro, Options{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%d bytes of data, %d of ctx: %v", len(ro.DataIn), len(ro.CtxIn), err)
		}
	}
	// A program type the kernel's test run has no context for.
	if _, err := r.Run(k.load(r, 2, prog(mov(r0, 0), exit())), RunOptions{}, Options{}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("a kprobe program: %v", err)
	}
}

func TestOutputHelpers(t *testing.T) {
	k := newSynth(t)
	// A ring buffer of 4096 bytes whose unread records take 4064: room
	// for one 16-byte record (24 with its header), not two: the producer
	// may not get more than mask bytes ahead (__bpf_ringbuf_reserve).
	rbm, _ := k.Map("bpf_ringbuf_map", 0, 20, 27, 0, 0, 4096, "rb", 0)
	rb := k.New("bpf_ringbuf").Set("mask", 4095).Set("consumer_pos", 100).Set("producer_pos", 100+4064)
	rbm.Set("rb", rb.Addr)
	// A perf event array of 2 slots, both holding a BPF output event
	// running on CPU 0.
	pea, slots := k.Array(21, 4, 4, 2, 0)
	ev := k.New("perf_event").Set("attr.type", 1).Set("attr.config", 10).Set("oncpu", 0)
	ee := k.New("bpf_event_entry").Set("event", ev.Addr)
	k.M.U64(slots, ee.Addr)
	k.M.U64(slots+8, ee.Addr)
	r := k.replayer()
	rbAddr, peAddr := rbm.Member("map").Addr, pea.Member("map").Addr
	insns := prog(
		st(bpfinsn.SizeDW, r10, -8, 0x11), st(bpfinsn.SizeDW, r10, -16, 0x22),
		// bpf_ringbuf_output(rb, r10-16, 16, 0) twice: 0, then -EAGAIN.
		ld64(r1, rbAddr), movX(r2, r10), add(r2, -16), mov(r3, 16), mov(r4, 0), call("bpf_ringbuf_output"), movX(r6, r0),
		ld64(r1, rbAddr), movX(r2, r10), add(r2, -16), mov(r3, 16), mov(r4, 0), call("bpf_ringbuf_output"), movX(r7, r0),
		// bpf_perf_event_output(ctx, map, BPF_F_CURRENT_CPU, r10-8, 8):
		// 0 on CPU 0; to slot 2, past max_entries: -E2BIG.
		mov(r1, 0), ld64(r2, peAddr), ld64(r3, 0xffffffff), movX(r4, r10), add(r4, -8), mov(r5, 8), call("bpf_perf_event_output"), movX(r8, r0),
		mov(r1, 0), ld64(r2, peAddr), mov(r3, 2), movX(r4, r10), add(r4, -8), mov(r5, 8), call("bpf_perf_event_output"), movX(r9, r0),
		// r0 = low bytes of each result.
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAnd | bpfinsn.SrcK, Dst: r6, Imm: 0xff},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAnd | bpfinsn.SrcK, Dst: r7, Imm: 0xff},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAnd | bpfinsn.SrcK, Dst: r8, Imm: 0xff},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAnd | bpfinsn.SrcK, Dst: r9, Imm: 0xff},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpLsh | bpfinsn.SrcK, Dst: r7, Imm: 8},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpLsh | bpfinsn.SrcK, Dst: r8, Imm: 16},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpLsh | bpfinsn.SrcK, Dst: r9, Imm: 24},
		movX(r0, r6), I{Code: bpfinsn.ClassALU64 | bpfinsn.OpOr | bpfinsn.SrcX, Dst: r0, Src: r7},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpOr | bpfinsn.SrcX, Dst: r0, Src: r8},
		I{Code: bpfinsn.ClassALU64 | bpfinsn.OpOr | bpfinsn.SrcX, Dst: r0, Src: r9},
		exit())
	p := k.load(r, 17, insns, rbAddr, peAddr)
	res, err := r.Run(p, RunOptions{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	low := func(e int) uint32 { return uint32(byte(errno(e))) }
	if want := low(eAGAIN)<<8 | low(e2BIG)<<24; res.Retval != want {
		t.Errorf("retval %#x, want %#x (0, -EAGAIN, 0, -E2BIG)", res.Retval, want)
	}
	if len(res.Outputs) != 2 || res.Outputs[0].Helper != "bpf_ringbuf_output" || res.Outputs[0].MapID != 20 ||
		res.Outputs[1].Helper != "bpf_perf_event_output" || res.Outputs[1].CPU != 0 || len(res.Outputs[1].Data) != 8 {
		t.Errorf("outputs %+v", res.Outputs)
	}
	// On CPU 1 the event of slot 1, running on CPU 0, refuses:
	// -EOPNOTSUPP.
	res, err = r.Run(p, RunOptions{}, Options{CPU: 1})
	if err != nil || res.Retval>>16&0xff != low(eOPNOTSUPP) {
		t.Errorf("on CPU 1: %#x, %v", res.Retval, err)
	}
}
