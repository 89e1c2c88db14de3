package main

import (
	"bytes"
	"strconv"
	"testing"
)

// TestInitramfs parses the archive by the newc spec: "070701", 13 hex
// fields, the name, padding to 4, the data, padding to 4.
func TestInitramfs(t *testing.T) {
	r := newInitramfs()
	r.addFile("/bin/x", 0o755, []byte("hello"))
	r.symlink("/bin/sh", "busybox")
	r.addFile("/etc/a/b", 0o644, nil)
	var buf bytes.Buffer
	if err := r.write(&buf); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	got := map[string]string{}
	modes := map[string]uint64{}
	for len(b) > 0 {
		if len(b) < 110 || string(b[:6]) != "070701" {
			t.Fatalf("bad header at %d bytes from the end: %q", len(b), b[:min(len(b), 16)])
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, size, namesize := field(1), field(6), field(11)
		name := string(b[110 : 110+namesize-1])
		off := (110 + namesize + 3) &^ 3
		data := string(b[off : off+size])
		b = b[(off+size+3)&^3:]
		if name == "TRAILER!!!" {
			break
		}
		got[name] = data
		modes[name] = uint64(mode)
	}
	if len(b) != 0 {
		t.Errorf("%d bytes after the trailer", len(b))
	}
	for name, want := range map[string]string{"bin/x": "hello", "bin/sh": "busybox", "etc/a/b": "", "etc/a": "", "bin": ""} {
		if d, ok := got[name]; !ok || d != want {
			t.Errorf("%s: got %q (present %v), want %q", name, d, ok, want)
		}
	}
	if modes["bin/x"] != cpioFile|0o755 || modes["bin/sh"]&cpioSymlink != cpioSymlink || modes["etc/a"]&cpioDir != cpioDir {
		t.Errorf("modes: %v", modes)
	}
}
