package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
)

// initramfs collects the files of a cpio "newc" archive, the format the
// kernel unpacks as its initial root.
type initramfs struct {
	entries map[string]cpioEntry
}

type cpioEntry struct {
	mode uint32 // type and permission bits
	data []byte // file contents, or a symlink's target
	src  string // file contents from this host path, when data is nil
}

const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
)

func newInitramfs() *initramfs { return &initramfs{entries: map[string]cpioEntry{}} }

func (r *initramfs) mkdirAll(p string) {
	for p != "/" && p != "." && p != "" {
		if _, ok := r.entries[p]; !ok {
			r.entries[p] = cpioEntry{mode: cpioDir | 0o755}
		}
		p = path.Dir(p)
	}
}

// addFile adds a file with the given contents.
func (r *initramfs) addFile(p string, perm uint32, data []byte) {
	r.mkdirAll(path.Dir(p))
	r.entries[p] = cpioEntry{mode: cpioFile | perm, data: data}
}

// copyFile adds the host file src as p, read when the archive is written.
func (r *initramfs) copyFile(p, src string, perm uint32) {
	r.mkdirAll(path.Dir(p))
	r.entries[p] = cpioEntry{mode: cpioFile | perm, src: src}
}

func (r *initramfs) symlink(p, target string) {
	r.mkdirAll(path.Dir(p))
	r.entries[p] = cpioEntry{mode: cpioSymlink | 0o777, data: []byte(target)}
}

// write writes the archive, parents before children.
func (r *initramfs) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	ino := uint32(1)
	for _, n := range names {
		e := r.entries[n]
		data := e.data
		if e.src != "" {
			b, err := os.ReadFile(e.src)
			if err != nil {
				return fmt.Errorf("initramfs %s: %w", n, err)
			}
			data = b
		}
		if err := writeCPIO(bw, ino, n[1:], e.mode, data); err != nil {
			return err
		}
		ino++
	}
	if err := writeCPIO(bw, 0, "TRAILER!!!", 0, nil); err != nil {
		return err
	}
	return bw.Flush()
}

func writeCPIO(w *bufio.Writer, ino uint32, name string, mode uint32, data []byte) error {
	nlink := 1
	if mode&cpioDir == cpioDir {
		nlink = 2
	}
	// newc: magic, then 13 eight-digit hex fields.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	w.WriteString(hdr)
	w.WriteString(name)
	w.WriteByte(0)
	pad(w, len(hdr)+len(name)+1)
	w.Write(data)
	pad(w, len(data))
	return nil
}

func pad(w *bufio.Writer, n int) {
	for ; n%4 != 0; n++ {
		w.WriteByte(0)
	}
}
