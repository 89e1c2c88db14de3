package linux

import (
	"errors"
	"fmt"
	"github.com/kinspect/kinspect/objects"
	"iter"
	"slices"
	"strings"
)

// Walkers of a mount namespace (fs/mount.h, fs/namespace.c) and the
// path of a dentry in it (fs/d_path.c). Mounts are struct mount objects,
// dentries struct dentry objects.

// MaxPathDepth bounds the dentries and mounts DPath crosses (PATH_MAX
// allows at most 2048 components).
const MaxPathDepth = 4096

// InitMntNS returns the mount namespace of init_task
// (init_task.nsproxy->mnt_ns), the one /proc/mounts shows to a process
// that has not unshared its own.
func InitMntNS(p *objects.Program) (objects.Value, error) {
	init, err := p.Variable("init_task")
	if err == nil {
		var ns objects.Value
		if ns, err = init.Path("nsproxy->mnt_ns"); err == nil {
			if ns, err = ns.Deref(); err == nil {
				return ns, nil
			}
		}
	}
	return objects.Value{}, fmt.Errorf("init mount namespace: %w", err)
}

// ForEachMount yields the mounts of the mount namespace ns (a struct
// mnt_namespace, or a pointer to one) in the order /proc/mounts lists
// them: the rbtree ns->mounts linked by mnt_node, ordered by mount ID
// (6.8+, 2eea9ce4310d "mounts: keep list of mounts in an rbtree"), else
// the list ns->list linked by mnt_list.
func ForEachMount(ns objects.Value) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		var walk iter.Seq2[objects.Value, error]
		if root, err := ns.Member("mounts"); err == nil && isStruct(root) {
			walk = objects.RBTreeForEachEntry(root, "struct mount", "mnt_node")
		} else if list, lerr := ns.Member("list"); lerr == nil {
			walk = objects.ListForEachEntry(list, "struct mount", "mnt_list")
		} else {
			yield(objects.Value{}, fmt.Errorf("mounts of namespace: %w", errors.Join(err, lerr)))
			return
		}
		for m, err := range walk {
			if err != nil {
				yield(objects.Value{}, fmt.Errorf("mounts of namespace: %w", err))
				return
			}
			if !yield(m, nil) {
				return
			}
		}
	}
}

// isStruct says v is a struct (ns->mounts was an unsigned int count
// before it became the rbtree).
func isStruct(v objects.Value) bool {
	_, err := v.Member("rb_node")
	return err == nil
}

// MountFSType returns the name of the filesystem type of mount mnt
// (mnt->mnt.mnt_sb->s_type->name: "bpf", "proc", ...).
func MountFSType(mnt objects.Value) (string, error) {
	n, err := mnt.Path("mnt.mnt_sb->s_type->name")
	if err != nil {
		return "", err
	}
	return n.CString()
}

// DentryName returns a dentry's name (d_name: len bytes at name).
func DentryName(d objects.Value) (string, error) {
	l, err := d.Path("d_name.len")
	if err != nil {
		return "", err
	}
	n, err := l.Uint()
	if err != nil {
		return "", err
	}
	a, err := d.MemberUint("d_name.name")
	if err != nil {
		return "", err
	}
	if n > 255 || a == 0 { // NAME_MAX
		da, _ := d.Address()
		return "", fmt.Errorf("dentry %#x: name of %d bytes at %#x: %w", da, n, a, objects.ErrCorrupt)
	}
	b := make([]byte, n)
	if err := d.Program().Read(b, a); err != nil {
		return "", err
	}
	return string(b), nil
}

// DPath returns the path of dentry in mount mnt as d_path shows it to a
// process whose root is the namespace's root: the names up to the
// mount's root, then across each mount point to the mount with no
// parent. A dentry unreachable from its mount's root (detached) ends at
// its own root, as prepend_path's IS_ROOT stop does.
func DPath(mnt, dentry objects.Value) (string, error) {
	p := mnt.Program()
	m, err := objects.ObjectAddr(mnt, "d_path")
	if err != nil {
		return "", err
	}
	d, err := objects.ObjectAddr(dentry, "d_path")
	if err != nil {
		return "", err
	}
	var parts []string
	for i := 0; ; i++ {
		if i == MaxPathDepth {
			return "", fmt.Errorf("d_path of dentry %#x: deeper than %d: %w", d, MaxPathDepth, objects.ErrCorrupt)
		}
		mv, err := p.ObjectOf("struct mount", m)
		if err != nil {
			return "", err
		}
		root, err := mv.MemberUint("mnt.mnt_root")
		if err != nil {
			return "", err
		}
		dv, err := p.ObjectOf("struct dentry", d)
		if err != nil {
			return "", err
		}
		parent, err := dv.MemberUint("d_parent")
		if err != nil {
			return "", err
		}
		if d == root || parent == d {
			up, err := mv.MemberUint("mnt_parent")
			if err != nil {
				return "", err
			}
			if up == m || up == 0 {
				break
			}
			if d, err = mv.MemberUint("mnt_mountpoint"); err != nil {
				return "", err
			}
			m = up
			continue
		}
		name, err := DentryName(dv)
		if err != nil {
			return "", err
		}
		parts = append(parts, name)
		d = parent
	}
	slices.Reverse(parts)
	return "/" + strings.Join(parts, "/"), nil
}

// MountPath returns where mount mnt is mounted, as /proc/mounts shows
// it: the path of its root.
func MountPath(mnt objects.Value) (string, error) {
	root, err := mnt.Path("mnt.mnt_root")
	if err != nil {
		return "", err
	}
	return DPath(mnt, root)
}
