package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// bpffsRoot is where bpffs is mounted in the guest.
const bpffsRoot = "/sys/fs/bpf"

// Pin paths: one map, one program and one link.
var (
	pinMap  = filepath.Join(bpffsRoot, "ki_hash")
	pinProg = filepath.Join(bpffsRoot, "ki_xdp")
	pinLink = filepath.Join(bpffsRoot, "ki_cgroup_link")
)

// pinObjects pins ki_hash, ki_xdp and the cgroup_skb link in bpffs,
// replacing stale pins of an earlier run.
func (r *runner) pinObjects() error {
	for _, p := range []string{pinMap, pinProg, pinLink} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale pin %s: %w", p, err)
		}
	}
	for _, e := range r.maps {
		if e.name == "ki_hash" {
			if err := e.m.Pin(pinMap); err != nil {
				return fmt.Errorf("pin map ki_hash: %w", err)
			}
			e.pinned = pinMap
		}
	}
	if e := r.findProg("ki_xdp"); e != nil {
		if err := e.prog.Pin(pinProg); err != nil {
			return fmt.Errorf("pin program ki_xdp: %w", err)
		}
		e.pinned = pinProg
	}
	for _, e := range r.links {
		if e.prog == "ki_cgroup_skb" {
			if err := e.lnk.Pin(pinLink); err != nil {
				return fmt.Errorf("pin cgroup link: %w", err)
			}
			e.pinned = pinLink
		}
	}
	for _, p := range []string{pinMap, pinProg, pinLink} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("pin %s missing after pinning: %w", p, err)
		}
	}
	return nil
}
