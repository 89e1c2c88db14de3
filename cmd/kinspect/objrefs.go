package main

import (
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/objects"
)

// What "prog|map|link show" adds with -f (bpftool's common.c
// build_pinned_obj_table: the pinned paths of each object) and --pids
// (bpftool's pids.c: the processes holding an fd to each object), and
// the "pinned PATH" selector (open_obj_pinned_any).

// showOpts are the options of the show commands besides the selector.
type showOpts struct {
	pinned  bool // -f, --bpffs
	pids    bool // --pids
	details bool // --details (link show)
}

// takeShowOpts takes -f/--bpffs, --pids and --details out of args.
func takeShowOpts(args []string) ([]string, showOpts) {
	var o showOpts
	var rest []string
	for _, a := range args {
		switch a {
		case "-f", "--bpffs":
			o.pinned = true
		case "--pids":
			o.pids = true
		case "--details":
			o.details = true
		default:
			rest = append(rest, a)
		}
	}
	return rest, o
}

// idHashmap is libbpf's hashmap (tools/lib/bpf/hashmap.c) as bpftool
// keys it by object ID (hash_fn_for_key_as_id) and fills it with
// hashmap__append: the order in which hashmap__for_each_key_entry gives
// the entries of one ID depends on every insertion and resize before,
// so kinspect replays them to print paths in bpftool's order.
type idHashmap struct {
	buckets []*idEntry
	capBits uint
	size    int
}

type idEntry struct {
	key   uint32
	value string
	next  *idEntry
}

// hashBits is libbpf's hash_bits on LP64.
func hashBits(h uint64, bits uint) uint64 {
	if bits == 0 {
		return 0
	}
	return (h * 11400714819323198485) >> (64 - bits)
}

// add is hashmap__append: grow when empty or over 75% full (rehashing
// bucket by bucket, each entry pushed at the head of its new bucket),
// then push the entry at the head of its bucket.
func (m *idHashmap) add(key uint32, value string) {
	if len(m.buckets) == 0 || (m.size+1)*4/3 > len(m.buckets) {
		bits := max(m.capBits+1, 2)
		nb := make([]*idEntry, 1<<bits)
		for _, e := range m.buckets {
			for e != nil {
				next := e.next
				h := hashBits(uint64(e.key), bits)
				e.next, nb[h] = nb[h], e
				e = next
			}
		}
		m.buckets, m.capBits = nb, bits
	}
	h := hashBits(uint64(key), m.capBits)
	m.buckets[h] = &idEntry{key: key, value: value, next: m.buckets[h]}
	m.size++
}

// get is hashmap__for_each_key_entry: the values of key in bucket order.
func (m *idHashmap) get(key uint32) []string {
	if m == nil || len(m.buckets) == 0 {
		return nil
	}
	var out []string
	for e := m.buckets[hashBits(uint64(key), m.capBits)]; e != nil; e = e.next {
		if e.key == key {
			out = append(out, e.value)
		}
	}
	return out
}

// pinTable is the pinned paths of one kind of object; nil without -f.
type pinTable struct{ m idHashmap }

// buildPinTable walks the bpffs mounts for the pins of kind typ, as
// build_pinned_obj_table. A pin that cannot be read is reported on
// stderr and left out.
func buildPinTable(e *env, k *kinspect.Kernel, typ bpf.ObjType) *pinTable {
	t := &pinTable{}
	for pin, err := range bpf.PinForEach(k.Program()) {
		if err != nil {
			fmt.Fprintf(e.stderr, "kinspect: pinned objects: %v\n", err)
			continue
		}
		if pin.Type == typ {
			t.m.add(pin.ID, pin.Path)
		}
	}
	return t
}

// writeJSON adds "pinned": [...] when any object of the kind is pinned
// (bpftool prints the key, even empty, whenever its table is not empty).
func (t *pinTable) writeJSON(j *jsonw, id uint32) {
	if t == nil || t.m.size == 0 {
		return
	}
	j.Name("pinned")
	j.BeginArray()
	for _, p := range t.m.get(id) {
		j.String(p)
	}
	j.EndArray()
}

// writePlain adds a "\n\tpinned PATH" per path.
func (t *pinTable) writePlain(w io.Writer, id uint32) {
	if t == nil {
		return
	}
	for _, p := range t.m.get(id) {
		fmt.Fprintf(w, "\n\tpinned %s", p)
	}
}

// objRef is one process holding an object: its thread group ID and its
// leader's comm.
type objRef struct {
	PID  int
	Comm string
}

// objRefs are an object's holders, in pid_iter's order, with a
// perf_event link's cookie.
type objRefs struct {
	refs      []objRef
	cookie    uint64
	hasCookie bool
}

// refsTable is the holders of each object of one kind; nil without
// --pids.
type refsTable map[uint32]*objRefs

// buildRefsTable walks every task's fds for objects of kind typ, as
// build_obj_refs_table reads pid_iter's records and add_ref keeps them:
// one entry per process and object, in the order met, the first
// record's cookie. Unreadable fds are reported on stderr.
func buildRefsTable(e *env, k *kinspect.Kernel, typ bpf.ObjType) refsTable {
	t := refsTable{}
	for f, err := range bpf.FileForEach(k.Program()) {
		if err != nil {
			fmt.Fprintf(e.stderr, "kinspect: pids: %v\n", err)
			continue
		}
		if f.Type != typ {
			continue
		}
		r := t[f.ID]
		if r == nil {
			r = &objRefs{cookie: f.Cookie, hasCookie: f.HasCookie}
			t[f.ID] = r
		}
		dup := false
		for _, x := range r.refs {
			dup = dup || x.PID == f.PID
		}
		if !dup {
			r.refs = append(r.refs, objRef{PID: f.PID, Comm: f.Comm})
		}
	}
	return t
}

// writeJSON is emit_obj_refs_json: "bpf_cookie" for a perf_event link,
// then "pids": [{"pid", "comm"}...], when the object has holders.
func (t refsTable) writeJSON(j *jsonw, id uint32) {
	r := t[id]
	if r == nil || len(r.refs) == 0 {
		return
	}
	if r.hasCookie {
		j.UintField("bpf_cookie", r.cookie)
	}
	j.Name("pids")
	j.BeginArray()
	for _, x := range r.refs {
		j.BeginObject()
		j.IntField("pid", int64(x.PID))
		j.StringField("comm", x.Comm)
		j.EndObject()
	}
	j.EndArray()
}

// writePlain is emit_obj_refs_plain: "\n\tbpf_cookie N" for a
// perf_event link, then "\n\tpids comm(pid), ...".
func (t refsTable) writePlain(w io.Writer, id uint32) {
	r := t[id]
	if r == nil || len(r.refs) == 0 {
		return
	}
	if r.hasCookie {
		fmt.Fprintf(w, "\n\tbpf_cookie %d", r.cookie)
	}
	fmt.Fprint(w, "\n\tpids ")
	for i, x := range r.refs {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprintf(w, "%s(%d)", x.Comm, x.PID)
	}
}

// objTables are what -f and --pids add to one noun's show.
type objTables struct {
	pins *pinTable
	refs refsTable
}

func buildObjTables(e *env, k *kinspect.Kernel, o showOpts, typ bpf.ObjType) objTables {
	var t objTables
	if o.pinned {
		t.pins = buildPinTable(e, k, typ)
	}
	if o.pids {
		t.refs = buildRefsTable(e, k, typ)
	}
	return t
}

func (t objTables) writeJSON(j *jsonw, id uint32) {
	t.pins.writeJSON(j, id)
	t.refs.writeJSON(j, id)
}

// findPinned returns the ID of the object of kind typ pinned at p, as
// bpftool's "pinned PATH" opens it (open_obj_pinned_any), with its
// errors: the path must name a pinned file of a bpffs mount, exactly
// (symbolic links are not followed, relative paths are not resolved).
func findPinned(prog *objects.Program, p string, typ bpf.ObjType) (uint32, error) {
	if !path.IsAbs(p) {
		return 0, fmt.Errorf("bpf obj get (%s): a dump has no working directory: give an absolute path: %w", p, errUsage)
	}
	clean := path.Clean(p)
	for pin, err := range bpf.PinForEach(prog) {
		if err != nil {
			return 0, fmt.Errorf("bpf obj get (%s): %w", p, err)
		}
		if pin.Path != clean {
			continue
		}
		if pin.Type != typ {
			return 0, fmt.Errorf("incorrect object type: %s", pin.Type)
		}
		return pin.ID, nil
	}
	for m, err := range bpf.FSMountForEach(prog) {
		if err != nil {
			return 0, fmt.Errorf("bpf obj get (%s): %w", p, err)
		}
		if clean == m.Path || strings.HasPrefix(clean, strings.TrimSuffix(m.Path, "/")+"/") {
			return 0, fmt.Errorf("bpf obj get (%s): no pinned object there: %w", p, objects.ErrNotFound)
		}
	}
	return 0, fmt.Errorf("bpf obj get (%s): directory not in bpf file system (bpffs): %w", p, objects.ErrNotFound)
}

// takePinned takes the selector "pinned PATH" out of o.rest, where
// parseObjArgs leaves it.
func takePinned(verb string, o *objArgs) (string, error) {
	if len(o.rest) == 0 || o.rest[0] == "" || !strings.HasPrefix("pinned", o.rest[0]) {
		return "", nil
	}
	if len(o.rest) < 2 {
		return "", fmt.Errorf("%s: pinned: want a path: %w", verb, errUsage)
	}
	if o.hasID || o.name != "" {
		return "", fmt.Errorf("%s: pinned: one selector only: %w", verb, errUsage)
	}
	p := o.rest[1]
	o.rest = o.rest[2:]
	return p, nil
}
