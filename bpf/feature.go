package bpf

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// Features is what a kernel supports in BPF, read offline from its
// BTF enums and its tables of operations (kernel/bpf/syscall.c), in the
// spirit of bpftool's "feature probe", which loads test programs and
// maps instead.
type Features struct {
	// ProgTypes and MapTypes are enum bpf_prog_type's and
	// bpf_map_type's values; Have says the kernel was built with the
	// type (its entry of bpf_prog_types[] or bpf_map_types[] is set).
	ProgTypes []Feature `json:"program_types"`
	MapTypes  []Feature `json:"map_types"`
	// AttachTypes and LinkTypes are the enums' values.
	AttachTypes []Feature `json:"attach_types"`
	LinkTypes   []Feature `json:"link_types"`
	// Helpers are enum bpf_func_id's values ("bpf_map_lookup_elem");
	// Have says the kernel has a prototype of the helper (hasProto).
	Helpers []Feature `json:"helpers"`
	// TablesRead says whether the operation tables were read (else Have
	// of program and map types only repeats the enum).
	TablesRead bool `json:"tables_read"`
}

// Feature is one enum value.
type Feature struct {
	Value uint64 `json:"value"`
	Name  string `json:"name"` // bpftool's spelling: "socket_filter", "lru_hash", "bpf_map_lookup_elem"
	Have  bool   `json:"have"`
	// Ops is the name of the operations the table points to
	// ("htab_map_ops"), when resolved.
	Ops string `json:"ops,omitempty"`
}

// SymbolNamer names the symbol at an address (kallsyms); ok false when
// none.
type SymbolNamer func(addr uint64) (name string, ok bool)

// FeatureProbe reads the kernel's BPF features. symName resolves the
// operation tables' pointers (nil: trust any non-NULL pointer); hasProto
// says whether the kernel has a prototype (struct bpf_func_proto) of the
// helper named without its bpf_ prefix, "map_lookup_elem" (nil: every
// helper the enum names counts).
func FeatureProbe(p *objects.Program, symName SymbolNamer, hasProto func(name string) bool) (*Features, error) {
	f := &Features{}
	var err error
	if f.ProgTypes, err = enumFeatures(p, "enum bpf_prog_type", "BPF_PROG_TYPE_"); err != nil {
		return nil, err
	}
	if f.MapTypes, err = enumFeatures(p, "enum bpf_map_type", "BPF_MAP_TYPE_"); err != nil {
		return nil, err
	}
	if f.AttachTypes, err = enumFeatures(p, "enum bpf_attach_type", "BPF_"); err != nil {
		return nil, err
	}
	if f.LinkTypes, err = enumFeatures(p, "enum bpf_link_type", "BPF_LINK_TYPE_"); err != nil {
		return nil, err
	}
	helpers, err := enumFeatures(p, "enum bpf_func_id", "BPF_FUNC_")
	if err != nil {
		return nil, err
	}
	for i := range helpers {
		helpers[i].Have = hasProto == nil || hasProto(helpers[i].Name)
		helpers[i].Name = "bpf_" + helpers[i].Name
	}
	f.Helpers = helpers
	// bpf_prog_types[] and bpf_map_types[] are indexed by type, NULL
	// for types not built in (kernel/bpf/syscall.c, include/linux/bpf_types.h).
	okP := readOpsTable(p, "bpf_prog_types", f.ProgTypes, "_ops", symName)
	okM := readOpsTable(p, "bpf_map_types", f.MapTypes, "_ops", symName)
	f.TablesRead = okP && okM
	return f, nil
}

// enumFeatures lists an enum's values other than UNSPEC and the __MAX
// sentinel, named as bpftool does, each Have.
func enumFeatures(p *objects.Program, enum, prefix string) ([]Feature, error) {
	t, err := p.Type(enum)
	if err != nil {
		return nil, err
	}
	e, ok := btfload.Underlying(t).(*btf.Enum)
	if !ok {
		return nil, fmt.Errorf("%s is not an enum: %w", enum, objects.ErrType)
	}
	seen := map[uint64]int{}
	var out []Feature
	for _, ev := range e.Values {
		if !strings.HasPrefix(ev.Name, prefix) {
			continue
		}
		name := strings.ToLower(strings.TrimPrefix(ev.Name, prefix))
		if name == "unspec" || strings.HasPrefix(ev.Name, "__") {
			continue
		}
		if i, dup := seen[ev.Value]; dup {
			// An alias: keep the name that is not _DEPRECATED.
			if strings.HasSuffix(out[i].Name, "_deprecated") {
				out[i].Name = name
			}
			continue
		}
		seen[ev.Value] = len(out)
		out = append(out, Feature{Value: ev.Value, Name: name, Have: true})
	}
	return out, nil
}

// readOpsTable sets Have from a table of operation pointers indexed by
// type; false when the table cannot be read.
func readOpsTable(p *objects.Program, sym string, fs []Feature, suffix string, symName SymbolNamer) bool {
	base, err := p.Symbol(sym)
	if err != nil {
		return false
	}
	for i := range fs {
		ptr, err := p.ReadU64(base + 8*fs[i].Value)
		if err != nil {
			return false
		}
		fs[i].Have = ptr != 0
		if ptr != 0 && symName != nil {
			name, ok := symName(ptr)
			// Past the table's end lies another object: a pointer not to
			// some *_ops is not an entry.
			fs[i].Have = ok && strings.HasSuffix(name, suffix)
			if fs[i].Have {
				fs[i].Ops = name
			}
		}
	}
	return true
}

// ProbeFeatures is FeatureProbe with the kernel's symbol table: it names
// the operations tables' entries and decides a helper is available when
// the kernel has a prototype for it. Prototypes are named after the
// helper, often with a prefix or suffix of their variant
// (bpf_skb_check_mtu_proto, bpf_get_func_ip_proto_tracing,
// bpf_probe_read_compat_proto, bpf_lwt_in_push_encap_proto): the
// helper's words in order, others between them allowed, then "proto".
func ProbeFeatures(p *objects.Program, syms *kallsyms.Table) (*Features, error) {
	var protos [][]string
	for s := range syms.All() {
		if strings.Contains(s.Name, "_proto") {
			protos = append(protos, strings.Split(s.Name, "_"))
		}
	}
	hasProto := func(name string) bool {
		want := strings.Split(name, "_")
		for _, p := range protos {
			i := 0
			for _, w := range p {
				if i < len(want) && w == want[i] {
					i++
				} else if i == len(want) && w == "proto" {
					return true
				}
			}
		}
		return false
	}
	return FeatureProbe(p, syms.NameAt, hasProto)
}
