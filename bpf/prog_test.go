package bpf_test

import (
	hexenc "encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/linux"
)

// truthProg is an entry of bpftool's "prog show --json".
type truthProg struct {
	ID           uint32   `json:"id"`
	Type         string   `json:"type"`
	Name         string   `json:"name"`
	Tag          string   `json:"tag"`
	GPL          bool     `json:"gpl_compatible"`
	LoadedAt     int64    `json:"loaded_at"`
	UID          uint32   `json:"uid"`
	BytesXlated  uint64   `json:"bytes_xlated"`
	Jited        bool     `json:"jited"`
	BytesJited   uint64   `json:"bytes_jited"`
	BytesMemlock uint64   `json:"bytes_memlock"`
	MapIDs       []uint32 `json:"map_ids"`
	BTFID        uint32   `json:"btf_id"`
}

// truthJited is the workload's jited/prog-ID.json: the program's
// bpf_prog_info JIT fields.
type truthJited struct {
	ID       uint32   `json:"id"`
	Ksyms    []string `json:"jited_ksyms"`
	FuncLens []uint32 `json:"jited_func_lens"`
	InsnsHex string   `json:"jited_insns_hex"`
	Funcs    []struct {
		Name    string `json:"name"`
		InsnOff uint32 `json:"insn_off"`
	} `json:"funcs"`
}

type truthJitedLinfo struct {
	ID    uint32   `json:"id"`
	Addrs []string `json:"jited_line_info"`
}

func parseHex(s string) uint64 {
	x, _ := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	return x
}

// TestLabBPFProgs walks prog_idr in each scenario's ELF dump and checks
// every program against the guest's bpftool ("prog show --json") and
// the JIT facts the workload read from bpf_prog_info: the image bytes,
// the subprograms' addresses and lengths, the JIT line addresses.
func TestLabBPFProgs(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			var truth []truthProg
			labdata.ReadJSON(t, sc.Path("truth/bpftool/prog.json"), &truth)
			want := map[uint32]truthProg{}
			for _, tp := range truth {
				want[tp.ID] = tp
			}
			boot, err := linux.RealMinusBoot(p)
			if err != nil {
				t.Fatal(err)
			}
			hidden := sc.Hidden(t).Progs
			seen, tagsOK, jitOK, jitTotal, nHidden := 0, 0, 0, 0, 0
			for bp, err := range bpf.ProgForEach(p) {
				if err != nil {
					t.Fatal(err)
				}
				tp, ok := want[bp.ID]
				if name, h := hidden[bp.ID]; !ok && h {
					// Hidden from bpftool (labdata.Hidden): the workload names it.
					if bp.FullName() != name {
						t.Errorf("hidden prog %d: name %s, workload's %s", bp.ID, bp.FullName(), name)
					}
					nHidden++
					continue
				}
				if !ok {
					t.Errorf("prog %d (%s) is not in bpftool's list", bp.ID, bp.Name)
					continue
				}
				seen++
				got := truthProg{ID: bp.ID, Type: bp.TypeName, Name: bp.FullName(), Tag: hexenc.EncodeToString(bp.Tag[:]), GPL: bp.GPL,
					LoadedAt: (int64(bp.LoadTime) + boot) / 1e9, UID: bp.UID, BytesXlated: uint64(bp.Len) * 8, Jited: bp.Jited,
					BytesJited: bp.JitedLen, BytesMemlock: bp.Memlock(), MapIDs: bp.MapIDs, BTFID: bp.BTFID}
				if fmt.Sprint(got) != fmt.Sprint(tp) {
					t.Errorf("prog %d:\n got %+v\nwant %+v", bp.ID, got, tp)
				}
				insns, err := bp.XlatedInsns()
				if err != nil {
					t.Errorf("prog %d: %v", bp.ID, err)
					continue
				}
				if bpfinsn.Tag(insns) == bp.Tag {
					tagsOK++
				}
				jf := sc.Path(fmt.Sprintf("truth/jited/prog-%d.json", bp.ID))
				if _, err := os.Stat(jf); err != nil {
					continue
				}
				jitTotal++
				var tj truthJited
				labdata.ReadJSON(t, jf, &tj)
				funcs, err := bp.Funcs()
				if err != nil {
					t.Errorf("prog %d: %v", bp.ID, err)
					continue
				}
				if len(funcs) != len(tj.Ksyms) || len(funcs) != len(tj.FuncLens) {
					t.Errorf("prog %d: %d images, truth %d", bp.ID, len(funcs), len(tj.Ksyms))
					continue
				}
				var image []byte
				bad := false
				for i, f := range funcs {
					if f.Addr != parseHex(tj.Ksyms[i]) || f.Len != tj.FuncLens[i] {
						t.Errorf("prog %d func %d: %#x len %d, truth %s len %d", bp.ID, i, f.Addr, f.Len, tj.Ksyms[i], tj.FuncLens[i])
						bad = true
					}
					b, err := f.Image()
					if err != nil {
						t.Errorf("prog %d: %v", bp.ID, err)
						bad = true
						continue
					}
					image = append(image, b...)
				}
				if hexenc.EncodeToString(image) != tj.InsnsHex {
					t.Errorf("prog %d: JIT image differs from bpf_prog_info's", bp.ID)
					bad = true
				}
				if lf := strings.TrimSuffix(jf, ".json") + "-jited-linfo.json"; !bad {
					if _, err := os.Stat(lf); err == nil {
						var tl truthJitedLinfo
						labdata.ReadJSON(t, lf, &tl)
						jl, err := bp.JitedLineInfo()
						if err != nil || len(jl) != len(tl.Addrs) {
							t.Errorf("prog %d: jited line info %d entries (%v), truth %d", bp.ID, len(jl), err, len(tl.Addrs))
							bad = true
						} else {
							for i := range jl {
								if jl[i] != parseHex(tl.Addrs[i]) {
									t.Errorf("prog %d: jited line %d at %#x, truth %s", bp.ID, i, jl[i], tl.Addrs[i])
									bad = true
									break
								}
							}
						}
					}
				}
				if !bad {
					jitOK++
				}
			}
			if seen != len(truth) {
				t.Errorf("%d programs, bpftool listed %d", seen, len(truth))
			}
			if nHidden != len(hidden) {
				t.Errorf("%d of the %d programs hidden from bpftool found", nHidden, len(hidden))
			}
			t.Logf("%d programs as bpftool; JIT images, addresses and line addresses equal for %d/%d; tag recomputed from xlated equal for %d/%d",
				seen, jitOK, jitTotal, tagsOK, seen)
		})
	}
}

// TestBPFProgByID finds a program by ID and fails cleanly for one that
// does not exist.
func TestBPFProgByID(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf") {
		sc := labkernel.Scenario(name)
		var truth []truthProg
		labdata.ReadJSON(t, sc.Path("truth/bpftool/prog.json"), &truth)
		last := truth[len(truth)-1]
		bp, err := bpf.ProgByID(p, last.ID)
		if err != nil || bp.FullName() != last.Name {
			t.Errorf("%s: bpf.ProgByID(%d) = %v, %v; want %s", name, last.ID, bp, err, last.Name)
		}
		if _, err := bpf.ProgByID(p, 1<<30); err == nil || !strings.Contains(err.Error(), "no BPF program") {
			t.Errorf("%s: bpf.ProgByID(1<<30): %v", name, err)
		}
	}
}
