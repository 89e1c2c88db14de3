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

// pinTable is the pinned paths of one kind of object; nil without -f.
type pinTable struct{ *bpf.Pins }

// buildPinTable walks the bpffs mounts for the pins of kind typ, as
// build_pinned_obj_table. A pin that cannot be read is reported on
// stderr and left out.
func buildPinTable(e *env, k *kinspect.Kernel, typ bpf.ObjType) *pinTable {
	t := &pinTable{bpf.PinsOf(k.Program(), typ)}
	for _, err := range t.Errs {
		fmt.Fprintf(e.stderr, "kinspect: pinned objects: %v\n", err)
	}
	return t
}

// writeJSON adds "pinned": [...] when any object of the kind is pinned
// (bpftool prints the key, even empty, whenever its table is not empty).
func (t *pinTable) writeJSON(j *jsonw, id uint32) {
	if t == nil || t.Len() == 0 {
		return
	}
	j.Name("pinned")
	j.BeginArray()
	for _, p := range t.Paths(id) {
		j.String(p)
	}
	j.EndArray()
}

// writePlain adds a "\n\tpinned PATH" per path.
func (t *pinTable) writePlain(w io.Writer, id uint32) {
	if t == nil {
		return
	}
	for _, p := range t.Paths(id) {
		fmt.Fprintf(w, "\n\tpinned %s", p)
	}
}

// refsTable is the holders of each object of one kind; nil without
// --pids.
type refsTable struct{ *bpf.Holders }

// buildRefsTable walks every task's fds for objects of kind typ, as
// build_obj_refs_table. Unreadable fds are reported on stderr.
func buildRefsTable(e *env, k *kinspect.Kernel, typ bpf.ObjType) refsTable {
	t := refsTable{bpf.HoldersOf(k.Program(), typ)}
	for _, err := range t.Errs {
		fmt.Fprintf(e.stderr, "kinspect: pids: %v\n", err)
	}
	return t
}

// writeJSON is emit_obj_refs_json: "bpf_cookie" for a perf_event link,
// then "pids": [{"pid", "comm"}...], when the object has holders.
func (t refsTable) writeJSON(j *jsonw, id uint32) {
	r := t.Of(id)
	if r == nil || len(r.Holders) == 0 {
		return
	}
	if r.HasCookie {
		j.UintField("bpf_cookie", r.Cookie)
	}
	j.Name("pids")
	j.BeginArray()
	for _, x := range r.Holders {
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
	r := t.Of(id)
	if r == nil || len(r.Holders) == 0 {
		return
	}
	if r.HasCookie {
		fmt.Fprintf(w, "\n\tbpf_cookie %d", r.Cookie)
	}
	fmt.Fprint(w, "\n\tpids ")
	for i, x := range r.Holders {
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

// findPinned is bpf.FindPinned; a relative path is a usage error.
func findPinned(prog *objects.Program, p string, typ bpf.ObjType) (uint32, error) {
	if !path.IsAbs(p) {
		return 0, fmt.Errorf("bpf obj get (%s): a dump has no working directory: give an absolute path: %w", p, errUsage)
	}
	return bpf.FindPinned(prog, p, typ)
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
