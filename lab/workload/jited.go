package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
)

// jitedProg is OUTDIR/prog-<id>.json: a program's JIT image and symbols.
type jitedProg struct {
	ID      uint32 `json:"id"`
	Name    string `json:"name"`
	Tag     string `json:"tag"`
	Type    string `json:"type"`
	TypeNum uint32 `json:"type_num"`
	// JitedKsyms are the start addresses ("0x..." hex strings) of the
	// main program and its subprograms, in the kernel's order.
	JitedKsyms []string `json:"jited_ksyms"`
	// JitedFuncLens are the byte lengths of those functions.
	JitedFuncLens []uint32 `json:"jited_func_lens"`
	// JitedInsnsHex is the raw JIT image, all functions concatenated in
	// the order of JitedKsyms.
	JitedInsnsHex string `json:"jited_insns_hex"`
	// Funcs are the BTF func_info records (subprogram names and their
	// instruction offsets), when the program has BTF.
	Funcs []jitedFunc `json:"funcs,omitempty"`
}

// jitedFunc is one BTF func_info record.
type jitedFunc struct {
	Name    string `json:"name"`
	InsnOff uint32 `json:"insn_off"`
}

// jitedLineInfo is OUTDIR/prog-<id>-jited-linfo.json.
type jitedLineInfo struct {
	ID uint32 `json:"id"`
	// JitedLineInfo are the JIT addresses ("0x..." hex strings) of the
	// line_info records, one for one.
	JitedLineInfo []string `json:"jited_line_info"`
	// LineInfo are the BTF line_info records, when they can be read.
	LineInfo []lineRecord `json:"line_info,omitempty"`
	// LineInfoError says why LineInfo is missing.
	LineInfoError string `json:"line_info_error,omitempty"`
}

// lineRecord is one BTF line_info record.
type lineRecord struct {
	InsnOff uint32 `json:"insn_off"`
	File    string `json:"file"`
	Line    uint32 `json:"line"`
	Col     uint32 `json:"col"`
	Source  string `json:"src"`
}

// writeJited writes the JIT files of every BPF program in the system to
// dir. Programs that disappear while it runs are skipped.
func writeJited(dir string) error {
	var id ebpf.ProgramID
	n := 0
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("next program after %d: %w", id, err)
		}
		id = next
		prog, err := ebpf.NewProgramFromID(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // unloaded meanwhile
		}
		if err != nil {
			return fmt.Errorf("open program %d: %w", id, err)
		}
		err = writeJitedProg(dir, uint32(id), prog)
		prog.Close()
		if err != nil {
			return err
		}
		n++
	}
	fmt.Fprintf(os.Stderr, "workload: jited: wrote %d programs to %s\n", n, dir)
	return nil
}

// writeJitedProg writes prog-<id>.json and, if the kernel reports
// jited_line_info, prog-<id>-jited-linfo.json.
func writeJitedProg(dir string, id uint32, prog *ebpf.Program) error {
	info, err := prog.Info()
	if err != nil {
		return fmt.Errorf("info of program %d: %w", id, err)
	}
	rec := jitedProg{
		ID: id, Name: info.Name, Tag: info.Tag, Type: info.Type.String(), TypeNum: uint32(info.Type),
		JitedKsyms: []string{}, JitedFuncLens: []uint32{},
	}
	if addrs, ok := info.JitedKsymAddrs(); ok {
		for _, a := range addrs {
			rec.JitedKsyms = append(rec.JitedKsyms, fmt.Sprintf("%#x", uint64(a)))
		}
	}
	if lens, ok := info.JitedFuncLens(); ok {
		rec.JitedFuncLens = lens
	}
	if insns, ok := info.JitedInsns(); ok {
		rec.JitedInsnsHex = hex.EncodeToString(insns)
	}
	if funcs, err := info.FuncInfos(); err == nil {
		for _, f := range funcs {
			rec.Funcs = append(rec.Funcs, jitedFunc{Name: f.Func.Name, InsnOff: uint32(f.Offset)})
		}
	}
	if err := writeJSONFile(filepath.Join(dir, fmt.Sprintf("prog-%d.json", id)), &rec); err != nil {
		return err
	}

	jlines, ok := info.JitedLineInfos()
	if !ok {
		return nil
	}
	lrec := jitedLineInfo{ID: id}
	for _, a := range jlines {
		lrec.JitedLineInfo = append(lrec.JitedLineInfo, fmt.Sprintf("%#x", a))
	}
	if lines, err := info.LineInfos(); err != nil {
		lrec.LineInfoError = err.Error()
	} else {
		for _, l := range lines {
			lrec.LineInfo = append(lrec.LineInfo, lineRecord{
				InsnOff: uint32(l.Offset), File: l.Line.FileName(), Line: l.Line.LineNumber(),
				Col: l.Line.LineColumn(), Source: l.Line.Line(),
			})
		}
	}
	return writeJSONFile(filepath.Join(dir, fmt.Sprintf("prog-%d-jited-linfo.json", id)), &lrec)
}
