package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
	"golang.org/x/sys/unix"
)

// ringbufRecords is how many records ki_rb_produce leaves in ki_ringbuf;
// record i (from 0) has len = ringbufBaseLen+i.
const (
	ringbufRecords = 3
	ringbufBaseLen = 60
)

// perfCPU is the CPU on which ki_xdp's test run writes its perf record.
const perfCPU = 0

// produceRecords leaves unconsumed data in ki_ringbuf (mandatory) and in
// ki_perf_events (optional): it runs ki_rb_produce and ki_xdp through
// BPF_PROG_TEST_RUN and never reads what they wrote.
func (r *runner) produceRecords() error {
	p, m := r.core.Programs, r.core.Maps

	for i := 0; i < ringbufRecords; i++ {
		if _, err := p["ki_rb_produce"].Run(&ebpf.RunOptions{Data: make([]byte, ringbufBaseLen+i)}); err != nil {
			return fmt.Errorf("test run %d of ki_rb_produce: %w", i, err)
		}
	}
	r.addMap("ki_ringbuf", m["ki_ringbuf"], false,
		fmt.Sprintf("%d pending records {magic=0x4b495f524242 len=%d+i mark=0} (u64,u32,u32), never consumed", ringbufRecords, ringbufBaseLen),
		func() (int, error) { return ringbufRecords, nil })

	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("possible CPUs: %w", err)
	}
	perfContent := "no perf events installed"
	installed := 0
	if rd, err := perf.NewReader(m["ki_perf_events"], os.Getpagesize()); err != nil {
		r.note("perf event array: opening per-CPU perf buffers failed: %v", err)
	} else {
		keep = append(keep, rd)
		installed = ncpu
		perfContent = fmt.Sprintf("a BPF output perf event on each of %d CPUs", ncpu)
		if err := onCPU(perfCPU, func() error {
			_, err := p["ki_xdp"].Run(&ebpf.RunOptions{Data: ipv4Packet([4]byte{10, 1, 2, 3})})
			return err
		}); err != nil {
			r.note("perf event array: test run of ki_xdp on CPU %d failed: %v", perfCPU, err)
		} else {
			perfContent += fmt.Sprintf("; 1 pending record from ki_xdp on CPU %d {magic=0x4b495f50455246 sum=1112 pkt_len=64 lpm_val=4} (u64,u64,u32,u32)", perfCPU)
		}
	}
	r.addMap("ki_perf_events", m["ki_perf_events"], false, perfContent,
		func() (int, error) { return installed, nil })
	return nil
}

// ipv4Packet returns a 64-byte Ethernet frame carrying an IPv4 header with
// destination dst.
func ipv4Packet(dst [4]byte) []byte {
	b := make([]byte, 64)
	copy(b[0:6], []byte{0x02, 0, 0, 0, 0, 0x02})  // destination MAC
	copy(b[6:12], []byte{0x02, 0, 0, 0, 0, 0x01}) // source MAC
	binary.BigEndian.PutUint16(b[12:], 0x0800)    // IPv4
	ip := b[14:]
	ip[0] = 0x45                              // version 4, IHL 5
	binary.BigEndian.PutUint16(ip[2:], 64-14) // total length
	ip[8] = 64                                // TTL
	ip[9] = 17                                // UDP
	copy(ip[12:16], []byte{10, 0, 0, 1})      // source
	copy(ip[16:20], dst[:])
	return b
}

// onCPU runs fn on a thread bound to cpu, restoring the thread's affinity
// afterwards.
func onCPU(cpu int, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("get affinity: %w", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("bind to CPU %d: %w", cpu, err)
	}
	defer unix.SchedSetaffinity(0, &old)
	return fn()
}
