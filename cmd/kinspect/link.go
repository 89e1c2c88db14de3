package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "link", summary: "show BPF links (like bpftool link)", run: runLink,
		help: linkHelp, verbs: linkCommands, opts: []*option{optKallsyms}, bpftool: true})
}

const linkHelp = `Usage: kinspect [-c DUMP | --live] [--json | --pretty] link show [id ID | pinned PATH] [-f] [--pids] [--details] [-k FILE]

Lists BPF links (link_idr) as bpftool 7.1's "link show": id, type,
prog_id, and what each type attaches to:
  tracing         prog_type, attach_type
  cgroup          cgroup_id, attach_type
  iter            target_name; map_id, tid or pid, cgroup_id and order
  netns           netns_ino, attach_type
  raw_tracepoint  tp_name

Options:
  --details            also what newer bpftool versions print:
                         tracing     target_obj_id, target_btf_id, cookie
                         xdp         devname, ifindex
                         perf_event  kprobe: retprobe, addr, func, offset;
                                     tracepoint: tracepoint
  -k, --kallsyms FILE  symbols from FILE instead of the dump's own kallsyms
  -f, --bpffs          each link's pinned paths, from the bpffs mounts in
                       memory (bpftool -f)
  --pids               the processes holding an fd to each link, and a
                       perf_event link's bpf_cookie (bpftool prints these by
                       default when built with skeletons)
`

var linkCommands = []*command{
	{name: "show", summary: "list links", run: runLinkShow, syntax: "[id LINK_ID | pinned FILE]",
		opts: []*option{optBPFFS, optPids, {long: "--details", help: "also what newer bpftool versions print"}}},
	{name: "list", summary: "list links", run: runLinkShow, syntax: "[id LINK_ID | pinned FILE]",
		opts: []*option{optBPFFS, optPids, {long: "--details", help: "also what newer bpftool versions print"}}},
	{name: "help", summary: "this help", run: func(e *env, _ []string) error { fmt.Fprint(e.stdout, linkHelp); return nil }},
}

func runLink(e *env, args []string) error {
	if len(args) == 0 {
		return runLinkShow(e, nil)
	}
	c, err := lookup(linkCommands, args[0])
	if err != nil {
		return fmt.Errorf("link: %w", err)
	}
	return c.run(e, args[1:])
}

func runLinkShow(e *env, args []string) error {
	args, opts := takeShowOpts(args)
	o, err := parseObjArgs("link show", args)
	if err != nil {
		return err
	}
	pinned, err := takePinned("link show", &o)
	if err != nil {
		return err
	}
	if len(o.rest) > 0 || o.name != "" {
		return fmt.Errorf("link show: unexpected arguments: %w", errUsage)
	}
	k, err := openKernel(e, o.kallsyms)
	if err != nil {
		return err
	}
	defer k.Close()
	if pinned != "" {
		if o.id, err = findPinned(k.Program(), pinned, bpf.ObjLink); err != nil {
			return err
		}
		o.hasID = true
	}
	links, err := bpf.SelectLinks(k.Program(), o.selector())
	if err != nil {
		if len(links) == 0 && (o.hasID || errors.Is(err, objects.ErrNotFound)) {
			if o.hasID {
				return fmt.Errorf("link show: %w", err)
			}
			return err
		}
		fmt.Fprintf(e.stderr, "kinspect: %v\n", err)
	}
	tabs := buildObjTables(e, k, opts, bpf.ObjLink)
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	if e.json {
		j := newJSONW(bw, e.pretty)
		if !o.hasID {
			j.BeginArray()
		}
		for _, l := range links {
			printLinkJSON(j, l, tabs, opts.details)
		}
		if !o.hasID {
			j.EndArray()
		}
		bw.WriteByte('\n')
		return nil
	}
	for _, l := range links {
		printLinkPlain(bw, l, tabs, opts.details)
		if l.Err != nil {
			fmt.Fprintf(e.stderr, "kinspect: link %d: %v\n", l.ID, l.Err)
		}
	}
	return nil
}

// printLinkJSON renders a link as bpftool 7.1's show_link_close_json;
// details adds the fields later versions print.
func printLinkJSON(j *jsonw, l *bpf.Link, tabs objTables, details bool) {
	j.BeginObject()
	defer j.EndObject()
	j.UintField("id", uint64(l.ID))
	typeField(j, "type", bpf.ToolLinkType(l.TypeName, l.Type))
	j.UintField("prog_id", uint64(l.ProgID))
	switch l.Type {
	case bpf.LinkTypeRawTracepoint:
		j.StringField("tp_name", l.TPName)
	case bpf.LinkTypeTracing:
		typeField(j, "prog_type", bpf.ToolProgType(l.ProgTypeName, l.ProgType))
		if l.HasAttachType {
			typeField(j, "attach_type", bpf.ToolAttachType(l.AttachTypeName, l.AttachType))
		}
		if !details {
			break
		}
		if l.HasTarget {
			j.UintField("target_obj_id", uint64(l.TargetObjID))
			j.UintField("target_btf_id", uint64(l.TargetBTFID))
		}
		j.UintField("cookie", l.Cookie)
	case bpf.LinkTypeCgroup:
		j.UintField("cgroup_id", l.CgroupID)
		if l.HasAttachType {
			typeField(j, "attach_type", bpf.ToolAttachType(l.AttachTypeName, l.AttachType))
		}
	case bpf.LinkTypeIter:
		j.StringField("target_name", l.IterTarget)
		switch iterKind(l.IterTarget) {
		case "map":
			j.UintField("map_id", uint64(l.IterMapID))
		case "task":
			if l.IterTID != 0 {
				j.UintField("tid", uint64(l.IterTID))
			} else if l.IterPID != 0 {
				j.UintField("pid", uint64(l.IterPID))
			}
		case "cgroup":
			j.UintField("cgroup_id", l.IterCgroupID)
			j.StringField("order", cgroupOrderString(l.IterCgroupOrder))
		}
	case bpf.LinkTypeNetns:
		j.UintField("netns_ino", uint64(l.NetnsIno))
		if l.HasAttachType {
			typeField(j, "attach_type", bpf.ToolAttachType(l.AttachTypeName, l.AttachType))
		}
	case bpf.LinkTypeXDP:
		if !details {
			break
		}
		if l.Ifindex == 0 {
			j.StringField("devname", "(detached)")
		} else {
			j.StringField("devname", l.Devname)
		}
		j.UintField("ifindex", uint64(l.Ifindex))
	case bpf.LinkTypePerfEvent:
		if p := l.Perf; p != nil && details {
			switch p.Kind {
			case "kprobe", "kretprobe":
				j.BoolField("retprobe", p.Retprobe)
				j.UintField("addr", p.Addr)
				j.StringField("func", p.Func)
				j.UintField("offset", p.Offset)
			case "tracepoint":
				j.StringField("tracepoint", p.Tracepoint)
			}
		}
	}
	tabs.writeJSON(j, l.ID)
	if l.Err != nil {
		j.StringField("error", l.Err.Error())
	}
}

// printLinkPlain renders a link as bpftool 7.1's show_link_close_plain;
// details adds what later versions print.
func printLinkPlain(w io.Writer, l *bpf.Link, tabs objTables, details bool) {
	fmt.Fprintf(w, "%d: ", l.ID)
	if tn := bpf.ToolLinkType(l.TypeName, l.Type); isNumber(tn) {
		fmt.Fprintf(w, "type %s  ", tn)
	} else {
		fmt.Fprintf(w, "%s  ", tn)
	}
	fmt.Fprintf(w, "prog %d  ", l.ProgID)
	at := func() {
		if l.HasAttachType {
			fmt.Fprintf(w, "attach_type %s  ", bpf.ToolAttachType(l.AttachTypeName, l.AttachType))
		}
	}
	switch l.Type {
	case bpf.LinkTypeRawTracepoint:
		fmt.Fprintf(w, "\n\ttp '%s'  ", l.TPName)
	case bpf.LinkTypeTracing:
		fmt.Fprintf(w, "\n\tprog_type %s  ", bpf.ToolProgType(l.ProgTypeName, l.ProgType))
		at()
		if l.HasTarget && details {
			fmt.Fprintf(w, "\n\ttarget_obj_id %d  target_btf_id %d  ", l.TargetObjID, l.TargetBTFID)
		}
	case bpf.LinkTypeCgroup:
		fmt.Fprintf(w, "\n\tcgroup_id %d  ", l.CgroupID)
		at()
	case bpf.LinkTypeIter:
		// bpftool 7.1's show_iter_plain: on the first line.
		fmt.Fprintf(w, "target_name %s  ", l.IterTarget)
		switch iterKind(l.IterTarget) {
		case "map":
			fmt.Fprintf(w, "map_id %d  ", l.IterMapID)
		case "task":
			if l.IterTID != 0 {
				fmt.Fprintf(w, "tid %d ", l.IterTID)
			} else if l.IterPID != 0 {
				fmt.Fprintf(w, "pid %d ", l.IterPID)
			}
		case "cgroup":
			fmt.Fprintf(w, "cgroup_id %d  order %s  ", l.IterCgroupID, cgroupOrderString(l.IterCgroupOrder))
		}
	case bpf.LinkTypeNetns:
		fmt.Fprintf(w, "\n\tnetns_ino %d  ", l.NetnsIno)
		at()
	case bpf.LinkTypeXDP:
		if !details {
			break
		}
		if l.Ifindex == 0 {
			fmt.Fprint(w, "\n\tifindex (detached)  ")
		} else {
			fmt.Fprintf(w, "\n\tifindex %s(%d)  ", l.Devname, l.Ifindex)
		}
	case bpf.LinkTypePerfEvent:
		if p := l.Perf; p != nil && details {
			switch p.Kind {
			case "kprobe", "kretprobe":
				fmt.Fprintf(w, "\n\t%s %s+%#x  addr %#x  ", p.Kind, p.Func, p.Offset, p.Addr)
			case "tracepoint":
				fmt.Fprintf(w, "\n\ttracepoint %s  ", p.Tracepoint)
			}
		}
	}
	tabs.pins.writePlain(w, l.ID)
	tabs.refs.writePlain(w, l.ID)
	fmt.Fprintln(w)
}

// iterKind is what bpftool 7.1 prints of an iterator target: "map"
// (map_id), "task" (tid or pid), "cgroup" (cgroup_id, order) or "".
func iterKind(target string) string {
	switch target {
	case "bpf_map_elem", "bpf_sk_storage_map":
		return "map"
	case "task", "task_file", "task_vma":
		return "task"
	case "cgroup":
		return "cgroup"
	}
	return ""
}

// cgroupOrderString names enum bpf_cgroup_iter_order as bpftool does.
func cgroupOrderString(order uint32) string {
	switch order {
	case 0:
		return "order_unspec"
	case 1:
		return "self_only"
	case 2:
		return "descendants_pre"
	case 3:
		return "descendants_post"
	case 4:
		return "ancestors_up"
	}
	return "unknown"
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
