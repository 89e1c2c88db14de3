package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "map", summary: "show, dump and look up BPF maps (like bpftool map)", run: runMap,
		help: mapHelp, verbs: mapCommands, opts: []*option{optKallsyms}, bpftool: true})
}

const mapHelp = `Usage: kinspect [-c DUMP | --live] [--json | --pretty] map COMMAND [-k FILE]

Commands (bpftool's grammar; any unique prefix works):
  map show [id ID | name NAME | pinned PATH] [-f] [--pids]
                                   list maps (map_idr): type, sizes,
                                   flags, memlock, owner, BTF id; -f
                                   adds pinned paths, --pids the
                                   processes holding each (see prog help)
  map list                         the same
  map dump id ID | name NAME [--order kernel|memory]
                                   every element, decoded from the map's
                                   kernel structures; keys and values as
                                   hex, and through the map's BTF like
                                   bpftool ("formatted"). Elements come in
                                   bpftool's order (--order kernel), except
                                   that a preallocated hash map of more than
                                   4 MiB of elements is read in memory order
                                   (--order memory): one sequential pass,
                                   over 1M elements/s from a compressed dump
  map lookup id ID key BYTES...    one element; BYTES as in bpftool:
                                   "key 0x01 0 0 0" or "key hex 01 00 00 00"
  map help                         this help

Dumpable types: hash, percpu_hash, lru_hash, lru_percpu_hash, array,
percpu_array, lpm_trie, prog_array (values are program ids),
perf_event_array (each slot's event and its pending records), stack_trace,
queue and stack (in pop order), ringbuf (positions and pending records),
struct_ops (key 0 and the value bpf_map_lookup_elem returns; see
"struct_ops dump").

Output follows bpftool's: text, or with --json the same keys
("key": ["0x01",...], "value", "values": [{"cpu", "value"}],
"formatted"). Where bpftool cannot read a map from user space (ringbuf,
queue, stack, perf_event_array) kinspect prints what the kernel holds:
see the notes in the README. Long dumps stream; with stderr on a
terminal a progress count is shown there.

Options:
  -k, --kallsyms FILE  symbols from FILE instead of the dump's own kallsyms
`

var mapCommands = []*command{
	{name: "show", summary: "list maps", run: runMapShow, syntax: "[MAP]", opts: []*option{optBPFFS, optPids}},
	{name: "list", summary: "list maps", run: runMapShow, syntax: "[MAP]", opts: []*option{optBPFFS, optPids}},
	{name: "dump", summary: "dump every element of a map", run: runMapDump, syntax: "id MAP_ID | name MAP_NAME",
		opts: []*option{{long: "--order", value: "ORDER", choices: []string{"kernel", "memory"}, help: "the elements' order: bpftool's (kernel) or memory's"}}},
	{name: "lookup", summary: "look up one element", run: runMapLookup, syntax: "{id MAP_ID | name MAP_NAME} key [hex] BYTE..."},
	{name: "help", summary: "this help", run: func(e *env, _ []string) error { fmt.Fprint(e.stdout, mapHelp); return nil }},
}

func runMap(e *env, args []string) error {
	if len(args) == 0 {
		return runMapShow(e, nil)
	}
	c, err := lookup(mapCommands, args[0])
	if err != nil {
		return fmt.Errorf("map: %w", err)
	}
	return c.run(e, args[1:])
}

// objArgs are the common arguments of the BPF nouns: -k FILE and a
// selector "id N" or "name NAME"; the rest is returned.
type objArgs struct {
	kallsyms string
	id       uint32
	hasID    bool
	name     string
	rest     []string
}

func parseObjArgs(noun string, args []string) (objArgs, error) {
	var o objArgs
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return o, fmt.Errorf("%s %s: want a file: %w", noun, a, errUsage)
			}
			i++
			o.kallsyms = args[i]
		case a == "id" && !o.hasID && len(o.rest) == 0:
			if i+1 == len(args) {
				return o, fmt.Errorf("%s: id: want a number: %w", noun, errUsage)
			}
			i++
			n, err := strconv.ParseUint(args[i], 0, 32)
			if err != nil {
				return o, fmt.Errorf("%s: id %q: want a number: %w", noun, args[i], errUsage)
			}
			o.id, o.hasID = uint32(n), true
		case a == "name" && o.name == "" && len(o.rest) == 0:
			if i+1 == len(args) {
				return o, fmt.Errorf("%s: name: want a name: %w", noun, errUsage)
			}
			i++
			o.name = args[i]
		default:
			o.rest = append(o.rest, a)
		}
	}
	return o, nil
}

// selector is the library's selector of what o selects.
func (o objArgs) selector() bpf.Selector {
	switch {
	case o.hasID:
		return bpf.Selector{Kind: bpf.SelectID, ID: o.id}
	case o.name != "":
		return bpf.Selector{Kind: bpf.SelectName, Name: o.name}
	}
	return bpf.Selector{}
}

func runMapShow(e *env, args []string) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(e.stdout, mapHelp)
		return nil
	}
	args, opts := takeShowOpts(args)
	o, err := parseObjArgs("map show", args)
	if err != nil {
		return err
	}
	pinned, err := takePinned("map show", &o)
	if err != nil {
		return err
	}
	if len(o.rest) > 0 {
		return fmt.Errorf("map show: unexpected %q: %w", o.rest[0], errUsage)
	}
	k, err := openKernel(e, o.kallsyms)
	if err != nil {
		return err
	}
	defer k.Close()
	if pinned != "" {
		if o.id, err = findPinned(k.Program(), pinned, bpf.ObjMap); err != nil {
			return err
		}
		o.hasID = true
	}
	maps, err := bpf.SelectMaps(k.Program(), o.selector())
	if err != nil {
		return fmt.Errorf("map show: %w", err)
	}
	tabs := buildObjTables(e, k, opts, bpf.ObjMap)
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	if e.json {
		j := newJSONW(bw, e.pretty)
		single := o.hasID || o.name != ""
		if !single {
			j.BeginArray()
		}
		for _, m := range maps {
			printMapJSON(j, m, tabs)
		}
		if !single {
			j.EndArray()
		}
		bw.WriteByte('\n')
		return nil
	}
	for _, m := range maps {
		printMapPlain(bw, e, m, tabs)
	}
	return nil
}

// printMapJSON renders a map as bpftool's show_map_close_json.
func printMapJSON(j *jsonw, m *bpf.MapShow, tabs objTables) {
	j.BeginObject()
	defer j.EndObject()
	if m.Map == nil {
		j.StringField("error", m.Err.Error())
		return
	}
	j.UintField("id", uint64(m.ID))
	typeField(j, "type", bpf.ToolMapType(m.TypeName, m.Type))
	if m.Name != "" {
		j.StringField("name", m.Name)
	}
	j.UintField("flags", uint64(m.Flags))
	j.UintField("bytes_key", uint64(m.KeySize))
	j.UintField("bytes_value", uint64(m.ValueSize))
	j.UintField("max_entries", uint64(m.MaxEntries))
	if m.HasMemlock {
		j.UintField("bytes_memlock", m.Memlock)
	}
	if m.Type == bpf.MapTypeProgArray && m.Owner != nil {
		typeField(j, "owner_prog_type", bpf.ToolProgType(m.Owner.ProgTypeName, m.Owner.ProgType))
		j.BoolField("owner_jited", m.Owner.Jited)
	}
	j.UintField("frozen", b2u(m.Frozen))
	if m.BTFID != 0 {
		j.UintField("btf_id", uint64(m.BTFID))
	}
	tabs.writeJSON(j, m.ID)
	if m.BTFErr != nil {
		j.StringField("btf_error", m.BTFErr.Error())
	}
	if m.Err != nil {
		j.StringField("error", m.Err.Error())
	}
}

// typeField writes a type name, or its number when the kernel's enum
// did not name it (as bpftool does for types libbpf does not know).
func typeField(j *jsonw, name, s string) {
	switch v := bpf.ToolTypeJSON(s).(type) {
	case uint64:
		j.UintField(name, v)
	default:
		j.StringField(name, s)
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// printMapPlain renders a map as bpftool's show_map_close_plain.
func printMapPlain(w io.Writer, e *env, m *bpf.MapShow, tabs objTables) {
	if m.Map == nil {
		fmt.Fprintf(e.stderr, "kinspect: %v\n", m.Err)
		return
	}
	fmt.Fprintf(w, "%d: ", m.ID)
	if tn := bpf.ToolMapType(m.TypeName, m.Type); isNumber(tn) {
		fmt.Fprintf(w, "type %s  ", tn)
	} else {
		fmt.Fprintf(w, "%s  ", tn)
	}
	if m.Name != "" {
		fmt.Fprintf(w, "name %s  ", m.Name)
	}
	fmt.Fprintf(w, "flags 0x%x\n", m.Flags)
	fmt.Fprintf(w, "\tkey %dB  value %dB  max_entries %d", m.KeySize, m.ValueSize, m.MaxEntries)
	if m.HasMemlock {
		fmt.Fprintf(w, "  memlock %dB", m.Memlock)
	}
	if m.Type == bpf.MapTypeProgArray && m.Owner != nil {
		fmt.Fprintf(w, "\n\towner_prog_type %s  owner", bpf.ToolProgType(m.Owner.ProgTypeName, m.Owner.ProgType))
		if !m.Owner.Jited {
			fmt.Fprint(w, " not")
		}
		fmt.Fprint(w, " jited")
	}
	tabs.pins.writePlain(w, m.ID)
	if m.BTFID != 0 || m.Frozen {
		fmt.Fprint(w, "\n\t")
	}
	if m.BTFID != 0 {
		fmt.Fprintf(w, "btf_id %d", m.BTFID)
	}
	if m.Frozen {
		if m.BTFID != 0 {
			fmt.Fprint(w, "  ")
		}
		fmt.Fprint(w, "frozen")
	}
	tabs.refs.writePlain(w, m.ID)
	fmt.Fprintln(w)
	if m.Err != nil {
		fmt.Fprintf(e.stderr, "kinspect: map %d: %v\n", m.ID, m.Err)
	}
	if m.BTFErr != nil {
		fmt.Fprintf(e.stderr, "kinspect: %v\n", m.BTFErr)
	}
}

// findMap returns the map the arguments select.
func findMap(k *kinspect.Kernel, o objArgs, verb string) (*bpf.Map, error) {
	if !o.hasID && o.name == "" {
		return nil, fmt.Errorf("map %s: want id ID or name NAME: %w", verb, errUsage)
	}
	m, err := bpf.FindMap(k.Program(), o.selector())
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", verb, err)
	}
	return m, nil
}

// dumper renders map entries as bpftool's map dump does.
type dumper struct {
	e        *env
	m        *bpf.Map
	w        *bufio.Writer
	j        *jsonw // JSON output, or text through BTF
	key, val btf.Type
	n        int
	errs     int
}

func (d *dumper) btf() bool { return d.val != nil || d.key != nil }

// entry writes one element.
func (d *dumper) entry(en *bpf.MapEntry) error {
	m := d.m
	switch {
	case m.Type == bpf.MapTypeRingBuf:
		return d.record(en)
	case m.Type == bpf.MapTypePerfEventArray:
		return d.perfSlot(en)
	}
	if en.Err != nil {
		d.errs++
		if d.e.json {
			d.j.BeginObject()
			if en.Key != nil {
				d.j.Name("key")
				d.j.HexData(en.Key)
			}
			d.j.Name("value")
			d.j.BeginObject()
			d.j.StringField("error", en.Err.Error())
			d.j.EndObject()
			d.j.EndObject()
			return nil
		}
		var sb strings.Builder
		msg := en.Err.Error()
		brk := len(en.Key) > 16 || len(msg) > 16
		single := len(en.Key)+len(msg) <= 24 && !brk
		sb.WriteString("key:" + pick(brk, "\n", " "))
		fprintHex(&sb, en.Key, " ")
		sb.WriteString(pick(single, "  ", "\n"))
		sb.WriteString("value:" + pick(brk, "\n", " ") + msg + "\n")
		d.w.WriteString(sb.String())
		return nil
	}
	d.n++
	switch {
	case d.e.json:
		return d.entryJSON(en)
	case d.btf():
		return d.formatted(d.j, en, true)
	}
	d.w.WriteString(plainEntry(m, en))
	return nil
}

func pick(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

// entryJSON is bpftool's print_entry_json.
func (d *dumper) entryJSON(en *bpf.MapEntry) error {
	j := d.j
	j.BeginObject()
	if en.Key != nil || d.m.KeySize > 0 {
		j.Name("key")
		j.HexData(en.Key)
	}
	if en.PerCPU != nil {
		j.Name("values")
		j.BeginArray()
		for i, v := range en.PerCPU {
			j.BeginObject()
			j.IntField("cpu", int64(i))
			j.Name("value")
			j.HexData(v)
			j.EndObject()
		}
		j.EndArray()
	} else {
		j.Name("value")
		j.HexData(en.Value)
	}
	var err error
	if d.btf() {
		j.Name("formatted")
		err = d.formatted(j, en, false)
	}
	j.EndObject()
	return err
}

// formatted is bpftool's do_dump_btf.
func (d *dumper) formatted(j *jsonw, en *bpf.MapEntry, plain bool) error {
	j.BeginObject()
	defer j.EndObject()
	if d.key != nil && en.Key != nil {
		j.Name("key")
		if err := bpf.DumpBTFValue(j, d.key, en.Key, plain); err != nil {
			return err
		}
	}
	if d.val == nil {
		return nil
	}
	if en.PerCPU != nil {
		j.Name("values")
		j.BeginArray()
		defer j.EndArray()
		for i, v := range en.PerCPU {
			j.BeginObject()
			j.IntField("cpu", int64(i))
			j.Name("value")
			err := bpf.DumpBTFValue(j, d.val, v, plain)
			j.EndObject()
			if err != nil {
				return err
			}
		}
		return nil
	}
	j.Name("value")
	return bpf.DumpBTFValue(j, d.val, en.Value, plain)
}

// plainEntry is bpftool's print_entry_plain.
func plainEntry(m *bpf.Map, en *bpf.MapEntry) string {
	var sb strings.Builder
	ks, vs := len(en.Key), int(m.ValueSize)
	if en.PerCPU == nil {
		brk := ks > 16 || vs > 16
		single := ks+vs <= 24 && !brk
		if ks > 0 {
			sb.WriteString("key:" + pick(brk, "\n", " "))
			fprintHex(&sb, en.Key, " ")
			sb.WriteString(pick(single, "  ", "\n"))
		}
		if vs > 0 {
			sb.WriteString("value:" + pick(brk, "\n", " "))
			fprintHex(&sb, en.Value, " ")
		}
		sb.WriteString("\n")
		return sb.String()
	}
	if ks > 0 {
		sb.WriteString("key:\n")
		fprintHex(&sb, en.Key, " ")
		sb.WriteString("\n")
	}
	for i, v := range en.PerCPU {
		fmt.Fprintf(&sb, "value (CPU %02d):%s", i, pick(vs > 16, "\n", " "))
		fprintHex(&sb, v, " ")
		sb.WriteString("\n")
	}
	return sb.String()
}

// record writes a ring buffer record (kinspect's own format: bpftool
// cannot read ring buffers).
func (d *dumper) record(en *bpf.MapEntry) error {
	r := en.Record
	d.n++
	if d.e.json {
		j := d.j
		j.BeginObject()
		j.UintField("pos", r.Pos)
		j.UintField("len", uint64(r.Len))
		j.UintField("pg_off", uint64(r.PgOff))
		j.BoolField("busy", r.Busy)
		j.BoolField("discard", r.Discard)
		if en.Err != nil {
			j.StringField("error", en.Err.Error())
		} else {
			j.Name("data")
			j.HexData(en.Value)
		}
		j.EndObject()
		return nil
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "record at %d: len %d  pg_off %d", r.Pos, r.Len, r.PgOff)
	if r.Busy {
		sb.WriteString("  busy")
	}
	if r.Discard {
		sb.WriteString("  discarded")
	}
	sb.WriteString("\n")
	if en.Err != nil {
		sb.WriteString("data: " + en.Err.Error() + "\n")
	} else if len(en.Value) > 0 {
		sb.WriteString("data:\n")
		fprintHex(&sb, en.Value, " ")
		sb.WriteString("\n")
	}
	d.w.WriteString(sb.String())
	return nil
}

// perfSlot writes a perf_event_array slot with its event.
func (d *dumper) perfSlot(en *bpf.MapEntry) error {
	d.n++
	ev := en.Event
	if d.e.json {
		j := d.j
		j.BeginObject()
		j.Name("key")
		j.HexData(en.Key)
		j.Name("value")
		j.BeginObject()
		if ev == nil {
			j.StringField("error", en.Err.Error())
		} else {
			j.IntField("cpu", int64(ev.CPU))
			j.UintField("event_type", uint64(ev.Type))
			j.UintField("config", ev.Config)
			j.UintField("data_head", ev.DataHead)
			j.UintField("data_tail", ev.DataTail)
			j.Name("records")
			j.BeginArray()
			for _, r := range ev.Records {
				j.BeginObject()
				j.UintField("type", uint64(r.Type))
				j.UintField("misc", uint64(r.Misc))
				j.UintField("size", uint64(r.Size))
				if r.Raw != nil {
					j.Name("raw")
					j.HexData(r.Raw)
				}
				j.EndObject()
			}
			j.EndArray()
			if ev.RecordsErr != nil {
				j.StringField("records_error", ev.RecordsErr.Error())
			}
		}
		j.EndObject()
		j.EndObject()
		return nil
	}
	var sb strings.Builder
	sb.WriteString("key: ")
	fprintHex(&sb, en.Key, " ")
	if ev == nil {
		sb.WriteString("  value: " + en.Err.Error() + "\n")
		d.w.WriteString(sb.String())
		return nil
	}
	fmt.Fprintf(&sb, "  cpu %d  event_type %d  config %d  data_head %d  data_tail %d\n", ev.CPU, ev.Type, ev.Config, ev.DataHead, ev.DataTail)
	for _, r := range ev.Records {
		fmt.Fprintf(&sb, "\trecord type %d  size %d", r.Type, r.Size)
		if r.Raw != nil {
			sb.WriteString("  raw:\n")
			fprintHex(&sb, r.Raw, " ")
		}
		sb.WriteString("\n")
	}
	if ev.RecordsErr != nil {
		sb.WriteString("\trecords: " + ev.RecordsErr.Error() + "\n")
	}
	d.w.WriteString(sb.String())
	return nil
}

// isTerminal says whether w is a terminal (progress goes there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func runMapDump(e *env, args []string) error {
	o, err := parseObjArgs("map dump", args)
	if err != nil {
		return err
	}
	order := bpf.OrderAuto
	if len(o.rest) == 2 && o.rest[0] == "--order" {
		switch o.rest[1] {
		case "kernel":
			order = bpf.OrderKernel
		case "memory":
			order = bpf.OrderMemory
		default:
			return fmt.Errorf("map dump --order %q: want kernel or memory: %w", o.rest[1], errUsage)
		}
		o.rest = nil
	}
	if len(o.rest) > 0 {
		return fmt.Errorf("map dump: unexpected %q: %w", o.rest[0], errUsage)
	}
	k, err := openKernel(e, o.kallsyms)
	if err != nil {
		return err
	}
	defer k.Close()
	m, err := findMap(k, o, "dump")
	if err != nil {
		return err
	}
	return dumpMap(e, k, m, order)
}

// dumpMap streams a map's elements to stdout.
func dumpMap(e *env, k *kinspect.Kernel, m *bpf.Map, order bpf.MapOrder) error {
	d := &dumper{e: e, m: m, w: bufio.NewWriterSize(e.stdout, 256<<10)}
	defer d.w.Flush()
	var err error
	if d.key, d.val, err = m.FormatTypes(k.Types().BTF()); err != nil {
		fmt.Fprintf(e.stderr, "kinspect: map %d: no BTF formatting: %v\n", m.ID, err)
		d.key, d.val = nil, nil
	}
	switch m.Type {
	case bpf.MapTypeRingBuf, bpf.MapTypePerfEventArray, bpf.MapTypeQueue, bpf.MapTypeStack:
		if !e.json {
			d.key, d.val = nil, nil // plain hex, as print_entry_plain
		}
	}
	if !e.json && m.BTFID == 0 {
		// bpftool formats text through BTF only for maps with a BTF
		// object (maps_have_btf), even a struct_ops map, whose value
		// type is vmlinux's.
		d.key, d.val = nil, nil
	}
	if e.json || d.btf() {
		d.j = newJSONW(d.w, !e.json || e.pretty)
	}
	progress := isTerminal(e.stderr)
	start := time.Now()
	if m.Type == bpf.MapTypeRingBuf {
		rb, err := m.RingBuf()
		if err != nil {
			return err
		}
		if e.json {
			d.j.BeginObject()
			d.j.UintField("size", rb.Size)
			d.j.UintField("consumer_pos", rb.ConsumerPos)
			d.j.UintField("producer_pos", rb.ProducerPos)
			if rb.PendingPos != nil {
				d.j.UintField("pending_pos", *rb.PendingPos)
			}
			d.j.Name("records")
		} else {
			fmt.Fprintf(d.w, "size %d  consumer_pos %d  producer_pos %d", rb.Size, rb.ConsumerPos, rb.ProducerPos)
			if rb.PendingPos != nil {
				fmt.Fprintf(d.w, "  pending_pos %d", *rb.PendingPos)
			}
			fmt.Fprintln(d.w)
		}
	}
	if d.j != nil {
		d.j.BeginArray()
	}
	var werr error
	for en, err := range m.EntriesIn(order) {
		if err != nil {
			werr = err
			break
		}
		if err := d.entry(en); err != nil {
			werr = fmt.Errorf("map %d: %w", m.ID, err)
			break
		}
		if progress && d.n&0xffff == 0 {
			fmt.Fprintf(e.stderr, "\r%d elements, %.0f/s ", d.n, float64(d.n)/time.Since(start).Seconds())
		}
	}
	if progress && d.n >= 0x10000 {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
	if d.j != nil {
		d.j.EndArray()
		if m.Type == bpf.MapTypeRingBuf && e.json {
			d.j.EndObject()
		}
		d.w.WriteByte('\n')
	}
	if !e.json && !d.btf() {
		what := "element"
		if m.Type == bpf.MapTypeRingBuf {
			what = "record"
		}
		fmt.Fprintf(d.w, "Found %d %s%s\n", d.n, what, pick(d.n != 1, "s", ""))
	}
	if werr != nil {
		// The elements so far are out; the error follows (under --json
		// as its own {"error": ...} value, as bpftool's p_err).
		d.w.Flush()
		return werr
	}
	return nil
}

func runMapLookup(e *env, args []string) error {
	o, err := parseObjArgs("map lookup", args)
	if err != nil {
		return err
	}
	k, err := openKernel(e, o.kallsyms)
	if err != nil {
		return err
	}
	defer k.Close()
	m, err := findMap(k, o, "lookup")
	if err != nil {
		return err
	}
	if len(o.rest) == 0 || !strings.HasPrefix("key", o.rest[0]) {
		return fmt.Errorf("map lookup: want key BYTES...: %w", errUsage)
	}
	key, err := parseBytes(o.rest[1:], "key", int(m.KeySize))
	if err != nil {
		return err
	}
	en, err := m.Lookup(key)
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	if errors.Is(err, objects.ErrNotFound) {
		if e.json {
			bw.WriteString("null\n")
			return nil
		}
		var sb strings.Builder
		sb.WriteString("key:\n")
		fprintHex(&sb, key, " ")
		sb.WriteString("\n\nNot found\n")
		bw.WriteString(sb.String())
		return nil
	}
	if err != nil {
		return fmt.Errorf("map lookup: %w", err)
	}
	d := &dumper{e: e, m: m, w: bw}
	if d.key, d.val, err = m.FormatTypes(k.Types().BTF()); err != nil {
		d.key, d.val = nil, nil
	}
	if e.json || d.btf() {
		d.j = newJSONW(bw, !e.json || e.pretty)
	}
	if err := d.entry(en); err != nil {
		return err
	}
	if d.j != nil {
		bw.WriteByte('\n')
	}
	return nil
}

// parseBytes parses n bytes as bpftool's parse_bytes: "hex" then hex
// digits, else C numbers (0x1f, 017, 31).
func parseBytes(args []string, what string, n int) ([]byte, error) {
	base := 0
	if len(args) > 0 && args[0] == "hex" {
		base, args = 16, args[1:]
	}
	if len(args) != n {
		return nil, fmt.Errorf("map lookup: %s expected %d bytes got %d: %w", what, n, len(args), errUsage)
	}
	out := make([]byte, n)
	for i, a := range args {
		x, err := strconv.ParseUint(a, base, 8)
		if base == 0 && err != nil && len(a) > 1 && a[0] == '0' && a[1] != 'x' && a[1] != 'X' {
			x, err = strconv.ParseUint(a[1:], 8, 8) // C octal
		}
		if err != nil {
			return nil, fmt.Errorf("map lookup: error parsing byte: %s: %w", a, errUsage)
		}
		out[i] = byte(x)
	}
	return out, nil
}
