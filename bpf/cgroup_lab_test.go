package bpf_test

import (
	"encoding/json"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
)

// TestLabCgroupTree: the cgroups with BPF programs attached, and the
// programs, are bpftool cgroup tree's (truth/bpftool/cgroup.json).
func TestLabCgroupTree(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			var truth []bpf.CgroupProgs
			labdata.ReadJSON(t, labkernel.Scenario(name).Path("truth/bpftool/cgroup.json"), &truth)
			mp, err := bpf.CgroupMountPoint(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := bpf.CgroupTree(p, mp)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(truth)
			if string(g) != string(w) {
				t.Errorf("got  %s\nwant %s", g, w)
			}
			n := 0
			for _, c := range truth {
				n += len(c.Programs)
			}
			t.Logf("%d cgroups with %d programs, as bpftool cgroup tree", len(truth), n)
		})
	}
}
