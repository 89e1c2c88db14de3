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

// Pin paths: one map, one program and one link, and the map again in a
// subdirectory (an object may have several pins, at any depth).
var (
	pinMap      = filepath.Join(bpffsRoot, "ki_hash")
	pinProg     = filepath.Join(bpffsRoot, "ki_xdp")
	pinLink     = filepath.Join(bpffsRoot, "ki_cgroup_link")
	pinMapAgain = filepath.Join(bpffsRoot, "ki", "maps", "ki_hash_again")
)

// pinObjects pins ki_hash, ki_xdp and the cgroup_skb link in bpffs,
// replacing stale pins of an earlier run.
func (r *runner) pinObjects() error {
	for _, p := range []string{pinMap, pinProg, pinLink, pinMapAgain} {
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
			// A second pin: the object already has one, so pin by hand.
			if err := os.MkdirAll(filepath.Dir(pinMapAgain), 0o755); err != nil {
				return fmt.Errorf("mkdir for second pin: %w", err)
			}
			c, err := e.m.Clone()
			if err != nil {
				return fmt.Errorf("clone map ki_hash: %w", err)
			}
			if err := c.Pin(pinMapAgain); err != nil {
				return fmt.Errorf("pin map ki_hash again: %w", err)
			}
			keep = append(keep, c)
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
	for _, p := range []string{pinMap, pinProg, pinLink, pinMapAgain} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("pin %s missing after pinning: %w", p, err)
		}
	}
	return nil
}
