package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// linksObject holds ki_iter and ki_sk_lookup.
const linksObject = "links.bpf.o"

// loadLinks attaches ki_iter to ki_hash with an iter link and
// ki_sk_lookup to the workload's network namespace with a netns link.
func (r *runner) loadLinks() error {
	path := filepath.Join(r.cfg.BPFDir, linksObject)
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("create objects of %s: %w", path, verifierDetail(err))
	}
	keep = append(keep, coll)
	it, err := link.AttachIter(link.IterOptions{Program: coll.Programs["ki_iter"], Map: r.core.Maps["ki_hash"]})
	if err != nil {
		return fmt.Errorf("attach iterator ki_iter to ki_hash: %w", err)
	}
	r.addProg("ki_iter", coll.Programs["ki_iter"], "iter:bpf_map_elem:ki_hash")
	r.addLink(it, "ki_iter", "iter:bpf_map_elem:ki_hash")

	ns, err := os.Open("/proc/self/ns/net")
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer ns.Close()
	sl, err := link.AttachNetNs(int(ns.Fd()), coll.Programs["ki_sk_lookup"])
	if err != nil {
		return fmt.Errorf("attach ki_sk_lookup to the network namespace: %w", err)
	}
	r.addProg("ki_sk_lookup", coll.Programs["ki_sk_lookup"], "netns:sk_lookup")
	r.addLink(sl, "ki_sk_lookup", "netns:sk_lookup")
	return nil
}
