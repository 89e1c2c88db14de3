package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/kinspect/kinspect/bpf"
)

func init() {
	register(&command{name: "feature", summary: "what BPF the kernel supports (like bpftool feature probe)", run: runFeature,
		help: featureHelp, syntax: "[probe]", opts: []*option{optKallsyms}, bpftool: true})
}

const featureHelp = `Usage: kinspect [-c DUMP | --live] [--json | --pretty] feature [probe] [-k FILE]

Lists the BPF program types, map types, helpers, attach types and link
types the kernel supports, offline: the names come from the kernel's BTF
enums (bpf_prog_type, bpf_map_type, bpf_func_id, bpf_attach_type,
bpf_link_type); a program or map type counts as available when its entry
of the kernel's bpf_prog_types[] / bpf_map_types[] table points to
operations (the type was built in), a helper when the kernel has its
prototype (bpf_NAME_proto).

Unlike bpftool feature probe, nothing is loaded: which helpers each
program type may call is decided by code (each type's get_func_proto)
and is not listed.

JSON keys follow bpftool's where they exist: "program_types":
{"have_socket_filter_prog_type": true, ...}, "map_types": {"have_hash_map_type": ...};
then "helpers": [names], "attach_types": [names], "link_types": [names].
`

func runFeature(e *env, args []string) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(e.stdout, featureHelp)
		return nil
	}
	if len(args) > 0 && strings.HasPrefix("probe", args[0]) {
		args = args[1:]
	}
	o, err := parseObjArgs("feature", args)
	if err != nil {
		return err
	}
	if len(o.rest) > 0 || o.hasID || o.name != "" {
		return fmt.Errorf("feature: unexpected arguments: %w", errUsage)
	}
	k, err := openKernel(e, o.kallsyms)
	if err != nil {
		return err
	}
	defer k.Close()
	f, err := bpf.ProbeFeatures(k.Program(), k.Symbols())
	if err != nil {
		return fmt.Errorf("feature: %w", err)
	}
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	if e.json {
		j := newJSONW(bw, e.pretty)
		j.BeginObject()
		have := func(key, suffix string, fs []bpf.Feature) {
			j.Name(key)
			j.BeginObject()
			for _, x := range fs {
				j.BoolField("have_"+x.Name+suffix, x.Have)
			}
			j.EndObject()
		}
		names := func(key string, fs []bpf.Feature) {
			j.Name(key)
			j.BeginArray()
			for _, x := range fs {
				if x.Have {
					j.String(x.Name)
				}
			}
			j.EndArray()
		}
		have("program_types", "_prog_type", f.ProgTypes)
		have("map_types", "_map_type", f.MapTypes)
		names("helpers", f.Helpers)
		names("attach_types", f.AttachTypes)
		names("link_types", f.LinkTypes)
		j.BoolField("tables_read", f.TablesRead)
		j.EndObject()
		bw.WriteByte('\n')
		return nil
	}
	avail := func(b bool) string { return pick(b, "is available", "is NOT available") }
	fmt.Fprintln(bw, "Scanning eBPF program types...")
	for _, x := range f.ProgTypes {
		fmt.Fprintf(bw, "eBPF program_type %s %s\n", x.Name, avail(x.Have))
	}
	fmt.Fprintln(bw, "\nScanning eBPF map types...")
	for _, x := range f.MapTypes {
		fmt.Fprintf(bw, "eBPF map_type %s %s\n", x.Name, avail(x.Have))
	}
	fmt.Fprintln(bw, "\nScanning eBPF helper functions...")
	for _, x := range f.Helpers {
		fmt.Fprintf(bw, "eBPF helper %s %s\n", x.Name, avail(x.Have))
	}
	fmt.Fprintln(bw, "\nAttach types:")
	for _, x := range f.AttachTypes {
		fmt.Fprintf(bw, "\t%s\n", x.Name)
	}
	fmt.Fprintln(bw, "\nLink types:")
	for _, x := range f.LinkTypes {
		fmt.Fprintf(bw, "\t%s\n", x.Name)
	}
	if !f.TablesRead {
		fmt.Fprintln(e.stderr, "kinspect: bpf_prog_types[]/bpf_map_types[] unreadable: every type the enums name is listed as available")
	}
	return nil
}
