package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// hideObject holds ki_hide and ki_hide_ids.
const hideObject = "hide.bpf.o"

// The slots of ki_hide_ids (bpf/hide.bpf.c).
const (
	hideSlotProg = uint32(0)
	hideSlotLink = uint32(1)
)

// hideContent describes ki_hide_ids for MapRecord.Content.
const hideContent = "[0]=ki_hide's program id, [1]=its link id"

// loadHide loads ki_hide, attaches it to the bpf LSM hook with a tracing
// link and writes their ids into ki_hide_ids: from then on
// BPF_PROG_GET_FD_BY_ID of the program and BPF_LINK_GET_FD_BY_ID of the
// link fail with ENOENT, and bpftool's prog and link listings skip them.
// The workload holds both by file descriptor, so its own queries (the
// ready file's info) still work. It checks that the ids no longer open.
func (r *runner) loadHide() error {
	path := filepath.Join(r.cfg.BPFDir, hideObject)
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("create objects of %s: %w", path, verifierDetail(err))
	}
	keep = append(keep, coll)
	prog, ids := coll.Programs["ki_hide"], coll.Maps["ki_hide_ids"]
	if prog == nil || ids == nil {
		return fmt.Errorf("%s lacks ki_hide or ki_hide_ids", path)
	}
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		return fmt.Errorf("attach ki_hide to the bpf LSM hook (is bpf in the kernel's lsm= list?): %w", err)
	}
	const target = "lsm:bpf"
	r.addProg("ki_hide", prog, target).hidden = true
	r.addLink(l, "ki_hide", target).hidden = true
	r.addMap("ki_hide_ids", ids, true, hideContent, func() (int, error) { return int(ids.MaxEntries()), nil })

	pinfo, err := prog.Info()
	if err != nil {
		return fmt.Errorf("info of ki_hide: %w", err)
	}
	progID, ok := pinfo.ID()
	if !ok {
		return fmt.Errorf("info of ki_hide: no id")
	}
	linfo, err := l.Info()
	if err != nil {
		return fmt.Errorf("info of ki_hide's link: %w", err)
	}
	if err := ids.Update(hideSlotProg, uint32(progID), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write ki_hide's id into ki_hide_ids: %w", err)
	}
	if err := ids.Update(hideSlotLink, uint32(linfo.ID), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write ki_hide's link id into ki_hide_ids: %w", err)
	}

	// The kernel must now refuse to open them by id, as bpftool would.
	if p, err := ebpf.NewProgramFromID(progID); err == nil {
		p.Close()
		return fmt.Errorf("program %d (ki_hide) still opens by id", progID)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("open program %d (ki_hide) by id: want ENOENT, got %w", progID, err)
	}
	if ln, err := link.NewFromID(linfo.ID); err == nil {
		ln.Close()
		return fmt.Errorf("link %d (ki_hide) still opens by id", linfo.ID)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("open link %d (ki_hide) by id: want ENOENT, got %w", linfo.ID, err)
	}
	r.logf("ki_hide: program %d and link %d hidden from BPF_PROG_GET_FD_BY_ID and BPF_LINK_GET_FD_BY_ID", progID, linfo.ID)
	return nil
}
