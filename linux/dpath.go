package linux

import (
	"fmt"
	"strings"

	"github.com/kinspect/kinspect/objects"
)

// The path of an open file as d_path shows it (fs/d_path.c): through
// the mounts for a file of a mounted filesystem, or the name the
// dentry's d_dname makes for a pseudo file (a pipe, a socket, an
// anonymous inode, a namespace).

// dnameFuncs are the d_dname functions FilePath knows, each with how
// it names a dentry.
var dnameFuncs = []string{"pipefs_dname", "sockfs_dname", "anon_inodefs_dname", "simple_dname", "ns_dname", "pidfs_dname", "dmabuffs_dname"}

// dnameFunc names the d_dname function at addr, "" for none FilePath
// knows.
func dnameFunc(p *objects.Program, addr uint64) string {
	return knownFunc(p, dnameFuncs, addr)
}

// knownFunc names the function of names at addr, "" for none: the
// functions' addresses are looked up once per set.
func knownFunc(p *objects.Program, names []string, addr uint64) string {
	v, _ := p.Memo("linux functions "+strings.Join(names, ","), func() (any, error) {
		m := map[uint64]string{}
		for _, n := range names {
			if a, err := p.Symbol(n); err == nil {
				m[a] = n
			}
		}
		return m, nil
	})
	return v.(map[uint64]string)[addr]
}

// FilePath returns the path of an open file (a struct file, or a
// pointer to one) as /proc/PID/fd's links and /proc/PID/maps show it:
// d_path(&file->f_path). A dentry whose d_op has d_dname, unless it is
// the root of its mount, is named by it: "pipe:[INO]", "socket:[INO]",
// "anon_inode:NAME", "NSTYPE:[INO]", "anon_inode:[pidfd]", "/NAME
// (deleted)" (simple_dname: memfds, shared anonymous memory). Other
// files are named by their dentries up to the namespace's root, with "
// (deleted)" after an unlinked file's name, as prepend_path does. A
// d_dname FilePath does not know is an error naming the function's
// address (wrapping ErrNotSupported).
func FilePath(file objects.Value) (string, error) {
	p := file.Program()
	fa, err := objects.ObjectAddr(file, "d_path")
	if err != nil {
		return "", err
	}
	f, err := p.ObjectOf("struct file", fa)
	if err != nil {
		return "", err
	}
	dentry, err := f.MemberUint("f_path.dentry")
	if err != nil {
		return "", err
	}
	vfsmnt, err := f.MemberUint("f_path.mnt")
	if err != nil {
		return "", err
	}
	if dentry == 0 || vfsmnt == 0 {
		return "", fmt.Errorf("d_path of file %#x: NULL f_path (dentry %#x, mnt %#x): %w", fa, dentry, vfsmnt, objects.ErrCorrupt)
	}
	d, err := p.ObjectOf("struct dentry", dentry)
	if err != nil {
		return "", err
	}
	vm, err := p.ObjectOf("struct vfsmount", vfsmnt)
	if err != nil {
		return "", err
	}
	root, err := vm.MemberUint("mnt_root")
	if err != nil {
		return "", err
	}
	parent, err := d.MemberUint("d_parent")
	if err != nil {
		return "", err
	}
	if dop, err := d.MemberUint("d_op"); err != nil {
		return "", err
	} else if dop != 0 && (parent != dentry || dentry != root) {
		fn, err := p.UintAt("struct dentry_operations", dop, "d_dname")
		if err != nil {
			return "", err
		}
		if fn != 0 {
			return dName(d, fn)
		}
	}
	mnt, err := objects.ContainerOf(vm, "struct mount", "mnt")
	if err != nil {
		return "", err
	}
	path, err := DPath(mnt, d)
	if err != nil {
		return "", err
	}
	// d_unlinked: unhashed and not a root.
	if pprev, err := d.MemberUint("d_hash.pprev"); err != nil {
		return "", err
	} else if pprev == 0 && parent != dentry {
		path += " (deleted)"
	}
	return path, nil
}

// dName is what the d_dname function at fn makes of dentry d.
func dName(d objects.Value, fn uint64) (string, error) {
	p := d.Program()
	ino := func() (uint64, error) {
		i, err := d.MemberUint("d_inode")
		if err != nil {
			return 0, err
		}
		if i == 0 {
			return 0, fmt.Errorf("dentry %#x: no inode: %w", d.Addr(), objects.ErrCorrupt)
		}
		return p.UintAt("struct inode", i, "i_ino")
	}
	switch name := dnameFunc(p, fn); name {
	case "pipefs_dname", "sockfs_dname":
		n, err := ino()
		what := map[string]string{"pipefs_dname": "pipe", "sockfs_dname": "socket"}[name]
		return fmt.Sprintf("%s:[%d]", what, n), err
	case "anon_inodefs_dname":
		s, err := DentryName(d)
		return "anon_inode:" + s, err
	case "pidfs_dname":
		return "anon_inode:[pidfd]", nil
	case "simple_dname":
		s, err := DentryName(d)
		return "/" + s + " (deleted)", err
	case "dmabuffs_dname":
		// "/NAME:DMABUF_NAME": the dma-buf's own name is left out.
		s, err := DentryName(d)
		return "/" + s + ":", err
	case "ns_dname":
		// The namespace (d_fsdata, a struct ns_common) names its type.
		n, err := ino()
		if err != nil {
			return "", err
		}
		ns, err := d.MemberUint("d_fsdata")
		if err != nil {
			return "", err
		}
		nc, err := p.ObjectOf("struct ns_common", ns)
		if err != nil {
			return "", err
		}
		t, err := nc.Path("ops->name")
		if err != nil {
			return "", err
		}
		s, err := t.CString()
		return fmt.Sprintf("%s:[%d]", s, n), err
	}
	return "", fmt.Errorf("dentry %#x: d_dname function %#x: %w", d.Addr(), fn, objects.ErrNotSupported)
}
