package bpf

import (
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// ProgInfo is what bpftool's "prog show" reports of a program: the
// fields of struct bpf_prog_info as bpf_prog_get_info_by_fd fills them,
// under bpftool's JSON names.
type ProgInfo struct {
	ID uint32 `json:"id"`
	// Type is bpftool 7.1's name of the program type (a number, as text,
	// for a type libbpf 1.1 does not know).
	Type      string `json:"type"`
	Name      string `json:"name,omitempty"`
	Tag       string `json:"tag"`
	GPL       bool   `json:"gpl_compatible"`
	RunTimeNs uint64 `json:"run_time_ns,omitempty" js:"bigint"`
	RunCnt    uint64 `json:"run_cnt,omitempty"`
	Misses    uint64 `json:"recursion_misses,omitempty"`
	// LoadTime is when the program was loaded, in ns since boot.
	LoadTime uint64 `json:"load_time" js:"bigint"`
	// LoadedAt is the wall-clock time of the load (LoadTime plus the
	// boot time of the kernel's timekeeper), in UTC; zero when the boot
	// time is unknown (Problems says why).
	LoadedAt     time.Time `json:"loaded_at"`
	UID          uint32    `json:"uid"`
	BytesXlated  uint64    `json:"bytes_xlated"`
	Jited        bool      `json:"jited"`
	BytesJited   uint64    `json:"bytes_jited,omitempty"`
	BytesMemlock uint64    `json:"bytes_memlock"`
	MapIDs       []uint32  `json:"map_ids"`
	BTFID        uint32    `json:"btf_id,omitempty"`
	// AttachType and AttachFunc are the expected attach type and the
	// attach target's name (fentry, LSM, ...), which bpftool 7.1's show
	// does not print.
	AttachType string `json:"attach_type,omitempty"`
	AttachFunc string `json:"attach_func,omitempty"`
	// Problems are fields that could not be read.
	Problems []string `json:"problems,omitempty"`
	// Obj and Aux are the struct bpf_prog and struct bpf_prog_aux.
	Obj objects.Value `json:"obj"`
	Aux objects.Value `json:"aux"`
}

// LoadedSecs is bpftool's loaded_at in JSON: seconds since the epoch.
func (pi *ProgInfo) LoadedSecs() int64 { return pi.LoadedAt.Unix() }

// Info returns what bpf_prog_get_info_by_fd would report of the program.
func (p *Prog) Info() *ProgInfo {
	pi := &ProgInfo{ID: p.ID, Type: ToolProgType(p.TypeName, p.Type), Name: p.FullName(), Tag: hex.EncodeToString(p.Tag[:]),
		GPL: p.GPL, LoadTime: p.LoadTime, UID: p.UID, BytesXlated: uint64(p.Len) * bpfinsn.InsnSize,
		Jited: p.Jited && p.JitedLen > 0, BytesJited: p.JitedLen, BytesMemlock: p.Memlock(), MapIDs: p.MapIDs, BTFID: p.BTFID,
		AttachType: p.AttachTypeName, AttachFunc: p.AttachFuncName, Obj: p.Obj, Aux: p.Aux}
	if !pi.Jited {
		pi.BytesJited = 0
	}
	pi.Problems = slices.Clone(p.Problems)
	st, err := p.Stats()
	if err != nil {
		pi.Problems = append(pi.Problems, fmt.Sprintf("stats: %v", err))
	}
	pi.RunTimeNs, pi.RunCnt, pi.Misses = st.RunTimeNs, st.RunCnt, st.RecursionMisses
	bootWall, bootErr := linux.RealMinusBoot(p.Obj.Program())
	if bootErr == nil && p.LoadTime != 0 {
		ns := int64(p.LoadTime) + bootWall
		pi.LoadedAt = time.Unix(0, 0).Add(time.Duration(ns)).UTC()
	} else if bootErr != nil {
		pi.Problems = append(pi.Problems, fmt.Sprintf("loaded_at: %v", bootErr))
	}
	return pi
}
