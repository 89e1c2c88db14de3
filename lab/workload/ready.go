package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Ready is the JSON document that "workload run" writes to its ready file
// once every object exists. The lab keeps it as part of the ground truth.
type Ready struct {
	// Kernel is the guest's uname release.
	Kernel string `json:"kernel"`
	// Scale tells whether -scale was given.
	Scale bool `json:"scale"`
	// Progs lists the programs the workload loaded (all names start "ki_").
	Progs []ProgRecord `json:"progs"`
	// Maps lists the maps the workload created.
	Maps []MapRecord `json:"maps"`
	// Links lists the BPF links the workload holds.
	Links []LinkRecord `json:"links"`
	// Pins lists the bpffs pins the workload made.
	Pins []PinRecord `json:"pins"`
	// Sleepers lists the sleeping tasks the workload started.
	Sleepers []SleeperRecord `json:"sleepers"`
	// Spinner describes the thread that runs ki_spin forever.
	Spinner *SpinnerRecord `json:"spinner"`
	// Lockup describes the thread that runs ki_lockup on SIGUSR2 (-lockup).
	Lockup *LockupRecord `json:"lockup,omitempty"`
	// Notes explains anything optional that was skipped or failed on
	// this kernel.
	Notes []string `json:"notes"`
	// TimingsMS gives the duration of each creation phase, in
	// milliseconds, in the order the phases ran.
	TimingsMS []PhaseTiming `json:"timings_ms"`
}

// ProgRecord describes one BPF program.
type ProgRecord struct {
	Name string `json:"name"`
	// Type is cilium/ebpf's name of the program type, e.g. "SocketFilter".
	Type string `json:"type"`
	// TypeNum is the kernel's enum bpf_prog_type value.
	TypeNum uint32 `json:"type_num"`
	ID      uint32 `json:"id"`
	Tag     string `json:"tag"`
	// Attach says where the program is attached, if anywhere, e.g.
	// "kprobe:do_nanosleep" or "cgroup:/sys/fs/cgroup:ingress".
	Attach string `json:"attach,omitempty"`
	// Pinned is the bpffs path the program is pinned at, if any.
	Pinned string `json:"pinned,omitempty"`
	// Hidden tells that the program keeps BPF_PROG_GET_FD_BY_ID from
	// opening it (ki_hide, see hide.go): bpftool does not list it, and
	// the truth's bpftool files lack it.
	Hidden bool `json:"hidden,omitempty"`
}

// MapRecord describes one BPF map.
type MapRecord struct {
	Name string `json:"name"`
	// Type is cilium/ebpf's name of the map type, e.g. "PerCPUHash".
	Type string `json:"type"`
	// TypeNum is the kernel's enum bpf_map_type value.
	TypeNum    uint32 `json:"type_num"`
	ID         uint32 `json:"id"`
	KeySize    uint32 `json:"key_size"`
	ValueSize  uint32 `json:"value_size"`
	MaxEntries uint32 `json:"max_entries"`
	// Entries is the number of live entries when the ready file was
	// written: keys for hash-like maps and the LPM trie, max_entries for
	// arrays, installed programs for the prog array, installed perf events
	// for the perf event array, pending records for the ring buffer,
	// queued values for the queue, stored stacks for the stack trace map.
	Entries int `json:"entries"`
	// BTF tells whether the map was created with BTF key/value types.
	BTF bool `json:"btf"`
	// Content describes the deterministic content (see maps.go).
	Content string `json:"content,omitempty"`
	// Pinned is the bpffs path the map is pinned at, if any.
	Pinned string `json:"pinned,omitempty"`
}

// LinkRecord describes one BPF link.
type LinkRecord struct {
	ID uint32 `json:"id"`
	// Type is cilium/ebpf's name of the link type, e.g. "PerfEvent".
	Type    string `json:"type"`
	TypeNum uint32 `json:"type_num"`
	Prog    string `json:"prog"`
	ProgID  uint32 `json:"prog_id"`
	Target  string `json:"target"`
	Pinned  string `json:"pinned,omitempty"`
	// Hidden tells that BPF_LINK_GET_FD_BY_ID cannot open the link
	// (ki_hide's, see hide.go): bpftool does not list it.
	Hidden bool `json:"hidden,omitempty"`
}

// PinRecord describes one bpffs pin.
type PinRecord struct {
	Path string `json:"path"`
	// Kind is "map", "prog" or "link".
	Kind string `json:"kind"`
	Name string `json:"name"`
	ID   uint32 `json:"id"`
}

// SleeperRecord describes one sleeping task started by the workload.
type SleeperRecord struct {
	Comm string `json:"comm"`
	PID  int    `json:"pid"`
	// Kind is how the task blocks: "nanosleep", "pipe_read", "futex",
	// "epoll_wait", "vfork_parent" (state D), "vfork_child", or
	// "threads" (a process whose Threads threads all block in pipe reads).
	Kind string `json:"kind"`
	// State is the task's state letter when the ready file was written.
	State string `json:"state"`
	// Wchan is /proc/PID/wchan when the ready file was written.
	Wchan string `json:"wchan,omitempty"`
	// Threads is the number of threads named Comm (threads kind only).
	Threads int `json:"threads,omitempty"`
}

// SpinnerRecord describes the thread that runs ki_spin forever.
type SpinnerRecord struct {
	ProgID   uint32 `json:"prog_id"`
	ProgName string `json:"prog_name"`
	PID      int    `json:"pid"`
	TID      int    `json:"tid"`
	Comm     string `json:"comm"`
	CPU      int    `json:"cpu"`
}

// PhaseTiming is the duration of one creation phase.
type PhaseTiming struct {
	Phase string `json:"phase"`
	MS    int64  `json:"ms"`
}

// writeJSONFile writes v as indented JSON to path, atomically: it writes a
// temporary file in the same directory and renames it, so a reader that
// polls for path never sees a partial document.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory of %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
