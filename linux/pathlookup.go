package linux

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kinspect/kinspect/objects"
)

// Path lookup from a string, as drgn's path_lookup: the walk the
// kernel's path walk makes (fs/namei.c), through the dentry cache only
// (a dump has no filesystem to read a directory from).

// PathInfo is what LookupPath found at a path.
type PathInfo struct {
	Path   string      `json:"path"`
	Mount  objects.Hex `json:"mount"`  // the struct mount
	Dentry objects.Hex `json:"dentry"` // the struct dentry
	Inode  objects.Hex `json:"inode"`  // the struct inode
	Ino    uint64      `json:"ino"`    // its number, as stat shows it
	// Type is the inode's file type as crash's files names it (REG, DIR,
	// CHR...), Mode its i_mode, Size i_size.
	Type string `json:"type"`
	Mode uint32 `json:"mode"`
	Size int64  `json:"size"`
	// FSType names the mount's filesystem type.
	FSType string `json:"fstype"`
	// Pages are the pages of its page cache (i_mapping->nrpages).
	Pages uint64 `json:"pages"`
	// Error says why the path could not be looked up.
	Error string `json:"error,omitempty"`
}

// errNotCached says a name is not in the dentry cache: the kernel may
// never have looked it up, or evicted it; a dump cannot tell which.
var errNotCached = errors.New("not in the dentry cache")

// LookupPath looks an absolute path up from the root of the mount
// namespace ns (a struct mnt_namespace) as a process of it whose root is
// the namespace's root would: each name a child of the dentry reached
// ("." and ".." as the kernel takes them), crossing into what is mounted
// on a dentry (the last mount on it, as the kernel does). It returns the
// mount and dentry reached. A name not among the children in the dentry
// cache, or a negative dentry, wraps objects.ErrNotFound.
func LookupPath(ns objects.Value, path string) (mnt, dentry objects.Value, err error) {
	p := ns.Program()
	if !strings.HasPrefix(path, "/") {
		return mnt, dentry, fmt.Errorf("path %q: not absolute: %w", path, objects.ErrNotFound)
	}
	root, err := ns.Member("root")
	if err != nil {
		return mnt, dentry, err
	}
	if mnt, err = root.Deref(); err != nil {
		return mnt, dentry, err
	}
	if dentry, err = mnt.Path("mnt.mnt_root"); err != nil {
		return mnt, dentry, err
	}
	if dentry, err = dentry.Deref(); err != nil {
		return mnt, dentry, err
	}
	mounts, err := mountsOn(ns)
	if err != nil {
		return mnt, dentry, err
	}
	// follow crosses into the mounts stacked on dentry.
	follow := func() error {
		for range len(mounts) + 1 {
			top, ok := mounts[[2]uint64{mnt.Addr(), dentry.Addr()}]
			if !ok {
				return nil
			}
			if mnt, err = p.ObjectOf("struct mount", top); err != nil {
				return err
			}
			if dentry, err = mnt.Path("mnt.mnt_root"); err != nil {
				return err
			}
			if dentry, err = dentry.Deref(); err != nil {
				return err
			}
		}
		return fmt.Errorf("mounts stacked on %#x: a cycle: %w", dentry.Addr(), objects.ErrCorrupt)
	}
	if err := follow(); err != nil {
		return mnt, dentry, err
	}
	done := "/"
	for _, name := range strings.Split(path, "/") {
		switch name {
		case "", ".":
			continue
		case "..":
			if err := up(p, &mnt, &dentry); err != nil {
				return mnt, dentry, fmt.Errorf("path %q: .. of %s: %w", path, done, err)
			}
		default:
			child, err := childNamed(dentry, name)
			if err != nil {
				return mnt, dentry, fmt.Errorf("path %q: %s in %s (dentry %#x): %w", path, name, done, dentry.Addr(), err)
			}
			dentry = child
		}
		if err := follow(); err != nil {
			return mnt, dentry, err
		}
		done = strings.TrimSuffix(done, "/") + "/" + name
	}
	return mnt, dentry, nil
}

// mountsOn maps (parent mount, mountpoint dentry) to the mount on it
// last: the one a path walk crosses into.
func mountsOn(ns objects.Value) (map[[2]uint64]uint64, error) {
	out := map[[2]uint64]uint64{}
	for m, err := range ForEachMount(ns) {
		if err != nil {
			return out, err
		}
		parent, err1 := m.MemberUint("mnt_parent")
		point, err2 := m.MemberUint("mnt_mountpoint")
		if err := errors.Join(err1, err2); err != nil {
			return out, fmt.Errorf("mount %#x: %w", m.Addr(), err)
		}
		if parent == m.Addr() {
			continue // the namespace's root
		}
		// A later mount on the same place hides the earlier (mount
		// IDs grow with time, and the walk is in their order).
		out[[2]uint64{parent, point}] = m.Addr()
	}
	return out, nil
}

// up moves to the parent directory: at a mount's root, first to where
// the mount sits (follow_dotdot); the namespace's root is its own
// parent.
func up(p *objects.Program, mnt, dentry *objects.Value) error {
	for range 64 {
		root, err := mnt.MemberUint("mnt.mnt_root")
		if err != nil {
			return err
		}
		if dentry.Addr() != root {
			break
		}
		parent, err := mnt.MemberUint("mnt_parent")
		if err != nil {
			return err
		}
		if parent == mnt.Addr() {
			return nil
		}
		point, err := mnt.MemberUint("mnt_mountpoint")
		if err != nil {
			return err
		}
		if *mnt, err = p.ObjectOf("struct mount", parent); err != nil {
			return err
		}
		if *dentry, err = p.ObjectOf("struct dentry", point); err != nil {
			return err
		}
	}
	d, err := dentry.Path("d_parent")
	if err == nil {
		*dentry, err = d.Deref()
	}
	return err
}

// childNamed finds the positive child dentry called name.
func childNamed(dir objects.Value, name string) (objects.Value, error) {
	for c, err := range ForEachDentryChild(dir) {
		if err != nil {
			return objects.Value{}, err
		}
		n, err := DentryName(c)
		if err != nil || n != name {
			continue
		}
		ino, err := c.MemberUint("d_inode")
		if err != nil {
			return objects.Value{}, err
		}
		if ino == 0 {
			return objects.Value{}, fmt.Errorf("a negative dentry (%#x): no such file: %w", c.Addr(), objects.ErrNotFound)
		}
		return c, nil
	}
	return objects.Value{}, fmt.Errorf("%w: %w", errNotCached, objects.ErrNotFound)
}

// ReadPathInfo looks path up (LookupPath) in init's mount namespace and
// describes what is there; a path it cannot look up is a PathInfo with
// its Error.
func ReadPathInfo(p *objects.Program, path string) PathInfo {
	pi := PathInfo{Path: path}
	ns, err := InitMntNS(p)
	if err != nil {
		pi.Error = err.Error()
		return pi
	}
	mnt, dentry, err := LookupPath(ns, path)
	if err != nil {
		pi.Error = err.Error()
		return pi
	}
	pi.Mount, pi.Dentry = objects.Hex(mnt.Addr()), objects.Hex(dentry.Addr())
	pi.FSType, _ = MountFSType(mnt)
	inode, err := dentry.Path("d_inode")
	if err == nil {
		inode, err = inode.Deref()
	}
	if err != nil {
		pi.Error = err.Error()
		return pi
	}
	pi.Inode = objects.Hex(inode.Addr())
	var mode, size uint64
	var errs []error
	for _, f := range []struct {
		path string
		v    *uint64
	}{{"i_ino", &pi.Ino}, {"i_mode", &mode}, {"i_size", &size}, {"i_mapping->nrpages", &pi.Pages}} {
		v, err := inode.Path(f.path)
		if err == nil {
			*f.v, err = v.Uint()
		}
		errs = append(errs, err)
	}
	pi.Mode, pi.Size, pi.Type = uint32(mode), int64(size), FileTypeName(mode)
	if err := errors.Join(errs...); err != nil {
		pi.Error = err.Error()
	}
	return pi
}

// LookupInode returns the struct inode at path in init's mount namespace
// (LookupPath).
func LookupInode(p *objects.Program, path string) (objects.Value, error) {
	pi := ReadPathInfo(p, path)
	if pi.Error != "" {
		return objects.Value{}, errors.New(pi.Error)
	}
	return p.ObjectOf("struct inode", uint64(pi.Inode))
}
