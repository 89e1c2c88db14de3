package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/kinspect/kinspect/vmcore"
)

// defaultPageCacheMiB is --page-cache's default: 4 MiB of decompressed
// pages (vmcore.DefaultCachePages of 4 KiB).
const defaultPageCacheMiB = vmcore.DefaultCachePages * 4096 >> 20

// errNoTarget: neither -c nor --live was given.
var errNoTarget = errors.New("no kernel to inspect: give -c DUMP or --live")

// openDump opens the memory of the kernel the globals name: the dump
// given by -c, or /proc/kcore under --live. Under --live without a
// readable /proc/kcore the error says so, and that commands needing only
// symbols and types still work from /proc/kallsyms and /sys/kernel/btf.
func openDump(e *env) (*vmcore.Dump, error) {
	if e.cache < 0 {
		return nil, fmt.Errorf("--page-cache %d: want MiB >= 0: %w", e.cache, errUsage)
	}
	opts := []vmcore.Option{vmcore.WithCachePages(e.cache << 20 / 4096)}
	switch {
	case e.dump != "" && e.live:
		return nil, fmt.Errorf("-c and --live exclude each other: %w", errUsage)
	case e.dump != "":
		return vmcore.Open(e.dump, opts...)
	case e.live:
		d, err := vmcore.OpenLive(opts...)
		if err != nil {
			why := "it cannot be read"
			switch {
			case errors.Is(err, fs.ErrNotExist):
				why = "this kernel has no /proc/kcore (CONFIG_PROC_KCORE off, or /proc not mounted as usual)"
			case errors.Is(err, fs.ErrPermission):
				why = "reading /proc/kcore needs root (CAP_SYS_RAWIO)"
			}
			return nil, fmt.Errorf("live kernel memory is unavailable: %s; commands that need only symbols and types still work from /proc/kallsyms and /sys/kernel/btf: %w", why, err)
		}
		return d, nil
	}
	return nil, fmt.Errorf("%w: %w", errNoTarget, errUsage)
}
