package bpf

import (
	"fmt"
	"iter"
	"strings"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// Walkers of the BPF file system (kernel/bpf/inode.c): the objects
// pinned in every bpffs mount, found in memory as bpftool's
// build_pinned_obj_table finds them with nftw and bpf_obj_get.

// ObjType is the kind of a BPF object, bpftool's enum bpf_obj_type.
type ObjType uint8

// The kinds, in bpftool's order.
const (
	ObjUnknown ObjType = iota
	ObjProg
	ObjMap
	ObjLink
)

// String is bpftool's name of the kind (get_fd_type_name): "prog",
// "map", "link", or "unknown".
// MarshalText is String, for JSON and scripts.
func (t ObjType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

func (t ObjType) String() string {
	switch t {
	case ObjProg:
		return "prog"
	case ObjMap:
		return "map"
	case ObjLink:
		return "link"
	case ObjUnknown:
		return "unknown"
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}

// bpfObjTypes are the kinds a bpffs inode or a BPF file can be, with the
// kernel's symbols that tell them: the inode_operations of bpf_mkobj_ops
// (bpf_inode_type compares inode->i_op with them) and the
// file_operations of the fd (bpf_prog_get_type_path, pid_iter.bpf.c
// compare file->f_op).
var bpfObjTypes = [...]struct {
	typ        ObjType
	iops, fops string
}{
	{ObjProg, "bpf_prog_iops", "bpf_prog_fops"},
	{ObjMap, "bpf_map_iops", "bpf_map_fops"},
	{ObjLink, "bpf_link_iops", "bpf_link_fops"}, // 5.7+ (70ed506c3bbc "bpf: Introduce pinnable bpf_link abstraction")
	// Links whose ops can poll (struct_ops links) get their own fops
	// since 6.11 ("bpf: support epoll from bpf struct_ops links");
	// bpftool's pid_iter counts them since 7.5 (820fac605eda "bpftool:
	// Change pid_iter.bpf.c to comply with the change of bpf_link_fops").
	{ObjLink, "", "bpf_link_fops_poll"},
}

// bpfObjSyms resolves the symbols of bpfObjTypes; one the kernel lacks
// (links before 5.7) stays 0 and matches nothing.
func bpfObjSyms(p *objects.Program, iops bool) map[uint64]ObjType {
	out := map[uint64]ObjType{}
	for _, t := range bpfObjTypes {
		name := t.fops
		if iops {
			name = t.iops
		}
		if name == "" {
			continue
		}
		if a, err := p.Symbol(name); err == nil && a != 0 {
			out[a] = t.typ
		}
	}
	return out
}

// bpfObjID reads the ID of the BPF object of kind typ at addr:
// prog->aux->id, map->id or link->id.
func bpfObjID(p *objects.Program, typ ObjType, addr uint64) (uint32, error) {
	var id uint64
	var err error
	switch typ {
	case ObjProg:
		id, err = p.UintAt("struct bpf_prog", addr, "aux->id")
	case ObjMap:
		id, err = p.UintAt("struct bpf_map", addr, "id")
	case ObjLink:
		id, err = p.UintAt("struct bpf_link", addr, "id")
	default:
		return 0, fmt.Errorf("bpf object %s at %#x: %w", typ, addr, objects.ErrType)
	}
	if err != nil {
		return 0, fmt.Errorf("bpf %s at %#x: %w", typ, addr, err)
	}
	return uint32(id), nil
}

// bpfObject returns the BPF object of kind typ at addr as a value of its
// struct type.
func bpfObject(p *objects.Program, typ ObjType, addr uint64) (objects.Value, error) {
	return p.ObjectOf("struct bpf_"+typ.String(), addr)
}

// FSMount is a mount of the BPF file system.
type FSMount struct {
	Mount objects.Value // struct mount
	Path  string        // where it is mounted, as /proc/mounts shows it
}

// FSMountForEach yields the bpffs mounts of init's mount namespace in
// /proc/mounts order: the mounts whose filesystem type's name starts
// with "bpf", as build_pinned_obj_table selects them.
func FSMountForEach(p *objects.Program) iter.Seq2[FSMount, error] {
	return func(yield func(FSMount, error) bool) {
		ns, err := linux.InitMntNS(p)
		if err != nil {
			yield(FSMount{}, err)
			return
		}
		for m, err := range linux.ForEachMount(ns) {
			if err != nil {
				yield(FSMount{}, err)
				return
			}
			fs, err := linux.MountFSType(m)
			if err == nil && !strings.HasPrefix(fs, "bpf") {
				continue
			}
			var path string
			if err == nil {
				path, err = linux.MountPath(m)
			}
			if err != nil {
				a, _ := m.Address()
				err = fmt.Errorf("mount %#x: %w", a, err)
			}
			if !yield(FSMount{Mount: m, Path: path}, err) || err != nil {
				return
			}
		}
	}
}

// Pin is a BPF object pinned in a bpffs.
type Pin struct {
	// Path is the pinned file's path, the mount's path followed by the
	// names of the dentries below its root.
	Path string  `json:"path"`
	Type ObjType `json:"kind"`
	ID   uint32  `json:"id"`
	// Obj is the object (inode->i_private): a struct bpf_prog, bpf_map
	// or bpf_link.
	Obj objects.Value `json:"obj"`
	// Dentry and Inode are the pinned file's.
	Dentry objects.Value `json:"dentry"`
	Inode  objects.Value `json:"inode"`
}

// PinForEach yields every object pinned in every bpffs mount (see
// FSMountForEach), in the order bpftool's build_pinned_obj_table
// meets them: each mount's tree walked as nftw(FTW_PHYS) walks it,
// preorder, each directory's entries in dcache_readdir's order (see
// ForEachDentryChild; only positive dentries). A bpffs mounted on a
// directory of the tree is entered, as nftw enters it; other
// filesystems mounted there are not (they hold no pinned objects). A
// pinned file is one whose inode->i_op is bpf_prog_iops, bpf_map_iops
// or bpf_link_iops, as bpf_inode_type tells them; an object pinned
// several times is yielded at each path. Errors name the path.
func PinForEach(p *objects.Program) iter.Seq2[Pin, error] {
	return func(yield func(Pin, error) bool) {
		ns, err := linux.InitMntNS(p)
		if err != nil {
			yield(Pin{}, err)
			return
		}
		type mountpoint struct{ parent, dentry uint64 }
		var bpffs []objects.Value
		over := map[mountpoint]objects.Value{} // bpffs mounts by where they sit
		for m, err := range linux.ForEachMount(ns) {
			if err != nil {
				yield(Pin{}, err)
				return
			}
			fs, err := linux.MountFSType(m)
			if err != nil {
				a, _ := m.Address()
				yield(Pin{}, fmt.Errorf("mount %#x: %w", a, err))
				return
			}
			if !strings.HasPrefix(fs, "bpf") {
				continue
			}
			bpffs = append(bpffs, m)
			up, err1 := m.MemberUint("mnt_parent")
			mp, err2 := m.MemberUint("mnt_mountpoint")
			if err1 != nil || err2 != nil {
				a, _ := m.Address()
				yield(Pin{}, fmt.Errorf("mount %#x: %w", a, firstErr(err1, err2)))
				return
			}
			// The last mount on a mount point hides those before it.
			over[mountpoint{up, mp}] = m
		}
		iops := bpfObjSyms(p, true)
		if len(iops) == 0 {
			yield(Pin{}, fmt.Errorf("bpffs: no symbol bpf_prog_iops, bpf_map_iops or bpf_link_iops: %w", objects.ErrNotFound))
			return
		}
		// top returns the mount and dentry a lookup of dentry d in mount m
		// ends at: the root of the bpffs mounted on it, if any.
		top := func(m, d objects.Value) (objects.Value, objects.Value, error) {
			for range linux.MaxPathDepth {
				ma, _ := m.Address()
				da, _ := d.Address()
				child, ok := over[mountpoint{ma, da}]
				if !ok || ma == 0 {
					return m, d, nil
				}
				root, err := child.Path("mnt.mnt_root")
				if err == nil {
					root, err = root.Deref()
				}
				if err != nil {
					return objects.Value{}, objects.Value{}, err
				}
				m, d = child, root
			}
			return objects.Value{}, objects.Value{}, fmt.Errorf("mounts stacked deeper than %d: %w", linux.MaxPathDepth, objects.ErrCorrupt)
		}
		stop := false
		var walk func(g *objects.Guard, m, dir objects.Value, path string, depth int) error
		walk = func(g *objects.Guard, m, dir objects.Value, path string, depth int) error {
			if depth > linux.MaxPathDepth {
				return fmt.Errorf("%s: deeper than %d directories: %w", path, linux.MaxPathDepth, objects.ErrCorrupt)
			}
			for d, err := range linux.ForEachDentryChild(dir) {
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				if ok, err := linux.SimplePositive(d); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				} else if !ok {
					continue
				}
				name, err := linux.DentryName(d)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				fpath := strings.TrimSuffix(path, "/") + "/" + name
				cm, cd, err := top(m, d)
				if err != nil {
					return fmt.Errorf("%s: %w", fpath, err)
				}
				da, _ := cd.Address()
				if err := g.Visit(da); err != nil {
					return fmt.Errorf("%s: %w", fpath, err)
				}
				inode, err := cd.Path("d_inode")
				if err == nil {
					inode, err = inode.Deref()
				}
				var iop, mode uint64
				if err == nil {
					iop, err = inode.MemberUint("i_op")
				}
				if err == nil {
					mode, err = inode.MemberUint("i_mode")
				}
				if err != nil {
					return fmt.Errorf("%s: %w", fpath, err)
				}
				if typ, ok := iops[iop]; ok {
					pin := Pin{Path: fpath, Type: typ, Dentry: cd, Inode: inode}
					priv, err := inode.MemberUint("i_private")
					if err == nil {
						pin.Obj, err = bpfObject(p, typ, priv)
					}
					if err == nil {
						pin.ID, err = bpfObjID(p, typ, priv)
					}
					if err != nil {
						err = fmt.Errorf("%s: %w", fpath, err)
					}
					if !yield(pin, err) {
						stop = true
						return nil
					}
					continue
				}
				if linux.IsDir(mode) {
					if err := walk(g, cm, cd, fpath, depth+1); err != nil || stop {
						return err
					}
				}
			}
			return nil
		}
		for _, m := range bpffs {
			path, err := linux.MountPath(m)
			if err != nil {
				a, _ := m.Address()
				yield(Pin{}, fmt.Errorf("bpffs mount %#x: %w", a, err))
				return
			}
			// nftw starts from what a lookup of the path finds: the
			// last bpffs mounted there when several are stacked.
			top1, root := m, objects.Value{}
			up, err := m.MemberUint("mnt_parent")
			var ma uint64
			if err == nil {
				ma, _ = m.Address()
				if up != ma && up != 0 {
					var pm, mp objects.Value
					if pm, err = p.ObjectOf("struct mount", up); err == nil {
						if mp, err = m.Path("mnt_mountpoint"); err == nil {
							if mp, err = mp.Deref(); err == nil {
								top1, root, err = top(pm, mp)
							}
						}
					}
				}
			}
			if err == nil && root.Program() == nil {
				if root, err = m.Path("mnt.mnt_root"); err == nil {
					root, err = root.Deref()
				}
			}
			if err == nil {
				err = walk(p.NewGuard("bpffs at "+path), top1, root, path, 0)
			}
			if err != nil {
				yield(Pin{}, fmt.Errorf("bpffs at %s: %w", path, err))
				return
			}
			if stop {
				return
			}
		}
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
