package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kinspect/kinspect/internal/labdata"
)

// AVML (Microsoft's Acquire Volatile Memory for Linux) is the other
// capture tool incident responders use. It is written in Rust, is not
// packaged by Debian, and its source cannot be fetched from the
// registries a lab machine reaches, so the avml scenario takes a built
// binary from $KINSPECT_AVML (lab/README.md says how one was built from
// Debian's Rust packages) and is not in CI's set. After QEMU's dumps the
// guest runs again and lab/guest/avml.sh runs avml --compress.

// envAVML names the avml binary the avml scenario puts in its guest.
const envAVML = "KINSPECT_AVML"

// avmlFiles is the avml binary a scenario uses.
type avmlFiles struct {
	Binary  string
	Version string // its --version
	Key     string // sha256 of the binary
}

// prepareAVML finds the avml binary of $KINSPECT_AVML.
func prepareAVML() (*avmlFiles, error) {
	p := os.Getenv(envAVML)
	if p == "" {
		return nil, fmt.Errorf("the avml scenario needs an avml binary in $%s (lab/README.md, AVML, says how to build one)", envAVML)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("$%s: %w", envAVML, err)
	}
	out, err := exec.Command(p, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", p, err)
	}
	sum := sha256.Sum256(b)
	return &avmlFiles{Binary: p, Version: strings.TrimSpace(string(out)), Key: hex.EncodeToString(sum[:])}, nil
}

// avmlKey adds the AVML inputs to a scenario's cache key.
func avmlKey(h io.Writer, af *avmlFiles) error {
	b, err := guestFiles.ReadFile("guest/avml.sh")
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "avml.sh %d\n", len(b))
	h.Write(b)
	fmt.Fprintf(h, "avml %s %s\n", af.Version, af.Key)
	return nil
}

// addAVMLFiles puts avml.sh (as /lime.sh: /init's "lime" word sources
// it) and avml with its libraries into the initramfs.
func addAVMLFiles(r *initramfs, af *avmlFiles) error {
	b, err := guestFiles.ReadFile("guest/avml.sh")
	if err != nil {
		return err
	}
	r.addFile("/lime.sh", 0o644, b)
	r.copyFile("/bin/avml", af.Binary, 0o755)
	libs, err := sharedLibs(af.Binary)
	if err != nil {
		return err
	}
	for _, l := range libs {
		r.copyFile(l, l, 0o755)
	}
	return nil
}

// avmlGuest has the paused guest run again and take an AVML capture
// into the truth directory, then moves it to dumps/avml and checks that
// it begins with a version-2 (compressed) AVML header.
func avmlGuest(v *vm, dir string) (labdata.Format, error) {
	var f labdata.Format
	start := time.Now()
	lc, err := guestCapture(v, dir, "avml-done", 30*time.Minute)
	if err != nil {
		return f, err
	}
	if lc.RC != 0 || lc.PID == 0 || lc.Parent == 0 {
		log, _ := os.ReadFile(filepath.Join(dir, "truth", "avml.log"))
		return f, fmt.Errorf("AVML capture: avml exit %d, pid %d, parent %d: %s", lc.RC, lc.PID, lc.Parent, tail(log, 2000))
	}
	dst := filepath.Join(dir, "dumps", "avml")
	if err := os.Rename(filepath.Join(dir, "truth", "avml.capture"), dst); err != nil {
		return f, err
	}
	fh, err := os.Open(dst)
	if err != nil {
		return f, err
	}
	defer fh.Close()
	var hdr [32]byte
	if _, err := io.ReadFull(fh, hdr[:]); err != nil {
		return f, fmt.Errorf("AVML capture: header: %w", err)
	}
	// AVML_MAGIC 0x4c4d5641 ("AVML" on disk), version 2: the range is
	// snappy-compressed.
	if !bytes.Equal(hdr[:4], []byte("AVML")) || binary.LittleEndian.Uint32(hdr[4:]) != 2 {
		return f, fmt.Errorf("AVML capture: header % x, want magic 0x4c4d5641 version 2", hdr[:8])
	}
	st, err := fh.Stat()
	if err != nil {
		return f, err
	}
	logf("AVML capture (%s): %d bytes in %v", lc.Tool, st.Size(), time.Since(start).Round(time.Second))
	return labdata.Format{Name: "avml", Path: "dumps/avml", Layout: "avml", Compression: "snappy",
		Producer: "avml", Bytes: st.Size()}, nil
}
