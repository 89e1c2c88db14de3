package vmcore

import (
	"fmt"
	"os"
)

// KcorePath is where the running kernel exposes itself as an ELF core.
const KcorePath = "/proc/kcore"

// kernelHalf is the lowest x86-64 kernel address (5-level paging).
const kernelHalf = 0xff00000000000000

// isKcoreLayout reports whether an ELF core looks like /proc/kcore: its
// PT_LOADs are virtual (fs/proc/kcore.c sets p_paddr to -1 for vmalloc,
// modules and vmemmap, where no single physical address fits).
func isKcoreLayout(ef *elfFile) bool {
	for _, s := range ef.vloads {
		if s.PAddr == noPAddr && s.VAddr >= kernelHalf {
			return true
		}
	}
	return false
}

// OpenLive opens the running kernel's /proc/kcore (root only; its
// VMCOREINFO note exists since Linux 4.19). Reads of kernel virtual
// addresses go through the page tables like any dump's, falling back to
// kcore's own virtual segments for memory outside RAM.
//
// Errors wrap the error of opening /proc/kcore (fs.ErrNotExist,
// fs.ErrPermission) or ErrFormat.
func OpenLive(opts ...Option) (*Dump, error) {
	return openKcore(KcorePath, opts...)
}

func openKcore(path string, opts ...Option) (*Dump, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open live kernel: %w", err)
	}
	// /proc/kcore's file offsets follow the virtual addresses (up to
	// 2^47 and more); its stat size is no bound. No segment is read past
	// its p_filesz, so a large bound does.
	const size = int64(1<<62 - 1)
	d, err := newDump(f, size, opts...)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open live kernel %s: %w", path, err)
	}
	if d.elf == nil {
		f.Close()
		return nil, fmt.Errorf("open live kernel %s: not an ELF core: %w", path, ErrFormat)
	}
	d.path, d.f, d.format = path, f, FormatKcore
	return d, nil
}
