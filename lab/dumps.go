package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kinspect/kinspect/internal/labdata"
)

// qemuDumps writes the dumps QEMU makes itself, with the VM paused.
func qemuDumps(q *qmp, dir string) ([]labdata.Format, error) {
	var out []labdata.Format
	for _, d := range []struct {
		name, format, layout, comp string
	}{
		{"elf", "elf", "elf", "none"},
		// QEMU 7.2 refuses lzo and snappy; its kdump files are flattened.
		{"qemu-kdump-zlib.flat", "kdump-zlib", "kdump-flat", "zlib"},
	} {
		p := filepath.Join(dir, d.name)
		start := time.Now()
		if _, err := q.do("dump-guest-memory", map[string]any{
			"paging": false, "protocol": "file:" + p, "format": d.format,
		}); err != nil {
			return nil, fmt.Errorf("dump-guest-memory %s: %w", d.format, err)
		}
		logf("dumped %s in %v", d.name, time.Since(start).Round(time.Millisecond))
		out = append(out, labdata.Format{Name: d.name, Path: "dumps/" + d.name, Layout: d.layout,
			Compression: d.comp, Producer: "qemu"})
	}
	return out, nil
}

// makedumpfileDumps converts QEMU's ELF dump with makedumpfile into the
// other formats, and recompresses an uncompressed kdump into zstd and
// snappy, which makedumpfile 1.7.2 here cannot write (its -z silently
// writes uncompressed pages).
func makedumpfileDumps(dir string) ([]labdata.Format, error) {
	elfPath := filepath.Join(dir, "elf")
	// makedumpfile 1.7.2 cannot read QEMU 7.2's ELF as written: give it a
	// copy with the program headers where it expects them.
	rw := filepath.Join(dir, "elf.rewritten")
	if err := rewriteELF(elfPath, rw); err != nil {
		return nil, err
	}
	defer os.Remove(rw)

	type job struct {
		name   string
		args   []string
		flat   bool // -F: write the flattened stream to stdout
		layout string
		comp   string
		level  int
		from   string // -R: rearrange this flattened file
	}
	jobs := []job{
		{name: "kdump-zlib.flat", args: []string{"-F", "-c", "-d", "0"}, flat: true, layout: "kdump-flat", comp: "zlib"},
		{name: "kdump-zlib", from: "kdump-zlib.flat", layout: "kdump", comp: "zlib"},
		{name: "kdump-lzo", args: []string{"-l", "-d", "0"}, layout: "kdump", comp: "lzo"},
		{name: "kdump-raw", args: []string{"-d", "1"}, layout: "kdump", comp: "none", level: 1},
		{name: "kdump-zlib-d31", args: []string{"-c", "-d", "31"}, layout: "kdump", comp: "zlib", level: 31},
		{name: "kdump-lzo-d31.flat", args: []string{"-F", "-l", "-d", "31"}, flat: true, layout: "kdump-flat", comp: "lzo", level: 31},
		{name: "elf-d31", args: []string{"-E", "-d", "31"}, layout: "elf", comp: "none", level: 31},
	}
	var out []labdata.Format
	for _, j := range jobs {
		p := filepath.Join(dir, j.name)
		start := time.Now()
		var cmd *exec.Cmd
		switch {
		case j.from != "":
			cmd = exec.Command("makedumpfile", "-R", p)
			in, err := os.Open(filepath.Join(dir, j.from))
			if err != nil {
				return nil, err
			}
			defer in.Close()
			cmd.Stdin = in
		case j.flat:
			cmd = exec.Command("makedumpfile", append(j.args, rw)...)
			f, err := os.Create(p)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			cmd.Stdout = f
		default:
			cmd = exec.Command("makedumpfile", append(j.args, rw, p)...)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("makedumpfile %s: %v\n%s", j.name, err, tail([]byte(stderr.String()), 3000))
		}
		logf("made %s in %v", j.name, time.Since(start).Round(time.Millisecond))
		out = append(out, labdata.Format{Name: j.name, Path: "dumps/" + j.name, Layout: j.layout,
			Compression: j.comp, DumpLevel: j.level, Producer: "makedumpfile"})
	}
	for _, c := range []string{"zstd", "snappy"} {
		name := "kdump-" + c
		start := time.Now()
		if err := recompressKdump(filepath.Join(dir, "kdump-raw"), filepath.Join(dir, name), c); err != nil {
			return nil, fmt.Errorf("recompress %s: %w", name, err)
		}
		logf("made %s in %v", name, time.Since(start).Round(time.Millisecond))
		out = append(out, labdata.Format{Name: name, Path: "dumps/" + name, Layout: "kdump",
			Compression: c, DumpLevel: 1, Producer: "lab-recompress"})
	}
	return out, nil
}
