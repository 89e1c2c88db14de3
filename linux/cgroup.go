package linux

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/kinspect/kinspect/objects"
)

// Walkers of the cgroup v2 hierarchy (include/linux/cgroup.h,
// cgroup-defs.h, kernel/cgroup/cgroup.c). Cgroups are struct cgroup
// objects.

// maxCgroupDepth bounds a cgroup's ancestors.
const maxCgroupDepth = 4096

// DefaultCgroupRoot returns the root cgroup of the default (v2)
// hierarchy, cgrp_dfl_root.cgrp.
func DefaultCgroupRoot(p *objects.Program) (objects.Value, error) {
	r, err := p.Variable("cgrp_dfl_root")
	if err != nil {
		return objects.Value{}, err
	}
	return r.Member("cgrp")
}

// CgroupForEachDescendantPre yields a cgroup and its descendants in
// pre-order, as css_for_each_descendant_pre over cgrp->self: each
// cgroup, then its children's subtrees in the order of its children
// list (creation order).
func CgroupForEachDescendantPre(cgrp objects.Value) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		p := cgrp.Program()
		ca, err := objects.ObjectAddr(cgrp, "css_for_each_descendant_pre")
		if err != nil {
			yield(objects.Value{}, err)
			return
		}
		g := p.NewGuard(fmt.Sprintf("cgroups under %#x", ca))
		var walk func(c objects.Value, depth int) bool
		walk = func(c objects.Value, depth int) bool {
			if err := g.Visit(c.Addr()); err != nil {
				return yield(objects.Value{}, err) && false
			}
			if depth > maxCgroupDepth {
				yield(objects.Value{}, fmt.Errorf("cgroup %#x: deeper than %d: %w", c.Addr(), maxCgroupDepth, objects.ErrCorrupt))
				return false
			}
			if !yield(c, nil) {
				return false
			}
			kids, err := c.Path("self.children")
			if err != nil {
				yield(objects.Value{}, err)
				return false
			}
			for css, err := range objects.ListForEachEntry(kids, "struct cgroup_subsys_state", "sibling") {
				if err != nil {
					yield(objects.Value{}, fmt.Errorf("children of cgroup %#x: %w", c.Addr(), err))
					return false
				}
				child, err := objects.ContainerOf(css, "struct cgroup", "self")
				if err != nil {
					yield(objects.Value{}, err)
					return false
				}
				if !walk(child, depth+1) {
					return false
				}
			}
			return true
		}
		c, _ := p.ObjectOf("struct cgroup", ca)
		walk(c, 0)
	}
}

// CgroupPath returns a cgroup's path in its hierarchy, as
// /proc/PID/cgroup shows it (cgroup_path_ns from the root): the names
// of its kernfs nodes below the root's, "/" for the root.
func CgroupPath(cgrp objects.Value) (string, error) {
	kn, err := cgrp.MemberUint("kn")
	if err != nil {
		return "", err
	}
	p := cgrp.Program()
	var parts []string
	for depth := 0; kn != 0; depth++ {
		if depth > maxCgroupDepth {
			return "", fmt.Errorf("cgroup %#x: kernfs path deeper than %d: %w", cgrp.Addr(), maxCgroupDepth, objects.ErrCorrupt)
		}
		n, err := p.ObjectOf("struct kernfs_node", kn)
		if err != nil {
			return "", err
		}
		// kernfs_node.parent, __parent since 6.14 (633488947ef6
		// "kernfs: Use RCU to access kernfs_node::parent").
		parent, err := n.MemberUint("parent")
		if errors.Is(err, objects.ErrNotFound) {
			parent, err = n.MemberUint("__parent")
		}
		if err != nil {
			return "", err
		}
		if parent == 0 {
			break // the hierarchy's root: its name is not in the path
		}
		nv, err := n.Member("name")
		if err != nil {
			return "", err
		}
		name, err := nv.CString()
		if err != nil {
			return "", err
		}
		parts = append(parts, name)
		kn = parent
	}
	slices.Reverse(parts)
	return "/" + strings.Join(parts, "/"), nil
}

// TaskCgroup returns a task's cgroup of the default hierarchy
// (task->cgroups->dfl_cgrp).
func TaskCgroup(task objects.Value) (objects.Value, error) {
	c, err := task.Path("cgroups->dfl_cgrp")
	if err != nil {
		return objects.Value{}, err
	}
	return c.Deref()
}

// TaskCgroupInfo is a task's cgroup, as /proc/PID/cgroup's "0::PATH".
type TaskCgroupInfo struct {
	Task   objects.Hex `json:"task"`
	PID    int         `json:"pid"`
	TID    int         `json:"tid"`
	Comm   string      `json:"comm"`
	CssSet objects.Hex `json:"css_set"`
	Cgroup objects.Hex `json:"cgroup"`
	Path   string      `json:"path"`
}

// ReadTaskCgroup reads a task's cgroup v2 membership.
func ReadTaskCgroup(task objects.Value) (*TaskCgroupInfo, error) {
	t, err := NewTask(task)
	if err != nil {
		return nil, err
	}
	tv, _ := task.Program().ObjectOf("struct task_struct", t.Addr)
	out := &TaskCgroupInfo{Task: objects.Hex(t.Addr), PID: t.PID, TID: t.TID, Comm: t.Comm}
	cs, err := tv.MemberUint("cgroups")
	if err != nil {
		return nil, err
	}
	out.CssSet = objects.Hex(cs)
	c, err := TaskCgroup(tv)
	if err != nil {
		return nil, fmt.Errorf("task %#x: %w", t.Addr, err)
	}
	out.Cgroup = objects.Hex(c.Addr())
	if out.Path, err = CgroupPath(c); err != nil {
		return nil, fmt.Errorf("task %#x: %w", t.Addr, err)
	}
	return out, nil
}
