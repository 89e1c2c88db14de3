package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/vmcore"
)

// symbolSources add module and BPF symbols to a dump's table; the
// objects layer registers its walkers of the module list and bpf_kallsyms
// here. A failing source becomes a note, not an error.
var symbolSources []func(d *vmcore.Dump, t *kallsyms.Table) error

// symbols is an open symbol table and what it came from.
type symbols struct {
	*kallsyms.Table
	source string   // "kallsyms text FILE", "/proc/kallsyms" or the dump's path
	notes  []string // what could not be added
	close  func()
}

// openSymbols opens the symbol table of the target: a /proc/kallsyms copy
// when file is given; under --live the running kernel's /proc/kallsyms
// (it needs no /proc/kcore and lists modules and BPF programs too); with
// -c, the table decoded from the dump's memory plus what symbolSources
// add. The vmlinux symbols are decoded here, so that errors show now.
func openSymbols(e *env, file string) (*symbols, error) {
	switch {
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		t, err := kallsyms.ParseProcKallsyms(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return &symbols{Table: t, source: file, close: func() {}}, nil
	case e.live && e.dump == "":
		t, err := kallsyms.OpenLive()
		if err != nil {
			return nil, err
		}
		return &symbols{Table: t, source: kallsyms.ProcPath, close: func() {}}, nil
	}
	d, err := openDump(e)
	if err != nil {
		return nil, err
	}
	t, err := kallsyms.FromDump(d)
	if err == nil {
		err = t.Load()
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("%s: %w", d.Path(), err)
	}
	s := &symbols{Table: t, source: d.Path(), close: func() { d.Close() }}
	for _, add := range symbolSources {
		if err := add(d, t); err != nil {
			s.notes = append(s.notes, err.Error())
		}
	}
	return s, nil
}

// hiddenReason explains zero addresses in /proc/kallsyms.
func hiddenReason() string {
	why := "the kernel hides symbol addresses from this user"
	if b, err := os.ReadFile("/proc/sys/kernel/kptr_restrict"); err == nil {
		switch k := strings.TrimSpace(string(b)); k {
		case "0":
			why = "kernel.kptr_restrict is 0, but this process lacks CAP_SYSLOG"
		case "1":
			why = "kernel.kptr_restrict is 1: addresses need CAP_SYSLOG (run as root)"
		default:
			why = "kernel.kptr_restrict is " + k + ": addresses are hidden even from root (set it to 1)"
		}
	}
	return "/proc/kallsyms shows every address as 0: " + why
}

// errHiddenAddrs wraps ErrHidden with the reason.
func errHiddenAddrs() error {
	return fmt.Errorf("%s: %w", hiddenReason(), kallsyms.ErrHidden)
}
