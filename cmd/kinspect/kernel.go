package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/vmcore"
)

// defaultPageCacheMiB is --page-cache's default: 4 MiB of decompressed
// pages (vmcore.DefaultCachePages of 4 KiB).
const defaultPageCacheMiB = vmcore.DefaultCachePages * 4096 >> 20

// errNoTarget: neither -c nor --live was given.
var errNoTarget = errors.New("no kernel to inspect: give -c DUMP or --live")

// options turns the global options, and a command's -k FILE, into the
// library's.
func options(e *env, kallsymsFile string) (kinspect.Options, error) {
	o := kinspect.Options{Dump: e.dump, Live: e.live, Kallsyms: kallsymsFile}
	switch {
	case e.cache < 0:
		return o, fmt.Errorf("--page-cache %d: want MiB >= 0: %w", e.cache, errUsage)
	case e.cache == 0:
		o.PageCache = -1
	default:
		o.PageCache = e.cache
	}
	switch {
	case e.dump != "" && e.live:
		return o, fmt.Errorf("-c and --live exclude each other: %w", errUsage)
	case e.dump == "" && !e.live:
		return o, fmt.Errorf("%w: %w", errNoTarget, errUsage)
	}
	decls, err := openDecls(e)
	if err != nil {
		return o, err
	}
	o.Declarations = decls
	return o, nil
}

// openKernel opens the kernel the globals name (kinspect.Open), with
// symbols from kallsymsFile, a /proc/kallsyms copy, when given.
func openKernel(e *env, kallsymsFile string) (*kinspect.Kernel, error) {
	o, err := options(e, kallsymsFile)
	if err != nil {
		return nil, err
	}
	return e.open(o)
}

// open opens a kernel and keeps it, for the damage report at the end of
// the command.
func (e *env) open(o kinspect.Options) (*kinspect.Kernel, error) {
	k, err := kinspect.Open(context.Background(), o)
	if err == nil {
		e.kernels = append(e.kernels, k)
	}
	return k, err
}

// openDecls returns the built-in declarations plus --declare-file's and
// --declare's, in that order (a later one of a name wins).
func openDecls(e *env) (*btfload.Decls, error) {
	d := btfload.NewDecls()
	if e.declareFile != "" {
		if err := d.AddFile(e.declareFile); err != nil {
			return nil, fmt.Errorf("--declare-file: %w: %w", err, errUsage)
		}
	}
	for _, s := range e.declares {
		if err := d.Add(s); err != nil {
			return nil, fmt.Errorf("--declare: %w: %w", err, errUsage)
		}
	}
	return d, nil
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
