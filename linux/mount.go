package linux

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/kinspect/kinspect/objects"
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
// the list ns->list linked by mnt_list. A damaged node is yielded as a
// *objects.Damage error, and the walk goes on with what is still
// reachable.
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
				// A damaged node loses its subtree, not the rest.
				if !yield(objects.Value{}, fmt.Errorf("mounts of namespace: %w", err)) || !objects.IsDamage(err) {
					return
				}
				continue
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

// MountInfo is a mount as /proc/mounts shows it (show_vfsmnt).
type MountInfo struct {
	Mount objects.Hex `json:"mount"` // the struct mount
	ID    int         `json:"id"`    // mnt_id
	// Device is mnt_devname ("none" without one), with space, tab,
	// newline and backslash escaped in octal as /proc/mounts does.
	Device string `json:"device"`
	// Path is where it is mounted, escaped as Device.
	Path string `json:"path"`
	// Type is the filesystem type, with its subtype ("fuse.sshfs").
	Type string `json:"type"`
	// Options are "rw" or "ro", the superblock's and the mount's flags,
	// then the filesystem's own options for the filesystems whose
	// show_options kinspect knows (OwnOptions); the mount's line in
	// /proc/mounts has them between type and "0 0".
	Options string `json:"options"`
	// OwnOptions says the filesystem's own options are in Options: it
	// has no show_options, or one kinspect emulates (tmpfs and
	// devtmpfs, proc, sysfs, cgroup2, bpf, debugfs, tracefs, ramfs).
	OwnOptions bool        `json:"own_options"`
	Super      objects.Hex `json:"super_block"`
	Root       objects.Hex `json:"root"` // mnt_root, a struct dentry
	// Error says why a mount on the namespace could not be read (a page
	// the dump lacks); only Mount is set then.
	Error string `json:"error,omitempty"`
}

// The mount flags of include/linux/mount.h and the superblock flags of
// include/linux/fs.h that /proc/mounts shows (show_mnt_opts,
// show_sb_opts), in its order.
var (
	sbOpts = []struct {
		bit  uint64
		name string
	}{{16, ",sync"}, {128, ",dirsync"}, {64, ",mand"}, {1 << 25, ",lazytime"}}
	mntOpts = []struct {
		bit  uint64
		name string
	}{{0x01, ",nosuid"}, {0x02, ",nodev"}, {0x04, ",noexec"}, {0x08, ",noatime"}, {0x10, ",nodiratime"}, {0x20, ",relatime"}, {0x80, ",nosymfollow"}}
)

const (
	mntReadonly = 0x40 // MNT_READONLY
	sbRdonly    = 1    // SB_RDONLY
)

// MangleMountField escapes what /proc/mounts escapes in a device or
// path (mangle, seq_path_root): space, tab, newline and backslash, as
// \ooo.
func MangleMountField(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// NewMountInfo reads what /proc/mounts shows of mount mnt (a struct
// mount, or a pointer to one). Errors name the mount.
func NewMountInfo(mnt objects.Value) (*MountInfo, error) {
	p := mnt.Program()
	ma, err := objects.ObjectAddr(mnt, "show_vfsmnt")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*MountInfo, error) { return nil, fmt.Errorf("mount %#x: %w", ma, err) }
	m, err := p.ObjectOf("struct mount", ma)
	if err != nil {
		return fail(err)
	}
	mi := &MountInfo{Mount: objects.Hex(ma)}
	id, err := m.MemberInt("mnt_id")
	if err != nil {
		return fail(err)
	}
	mi.ID = int(id)
	mi.Device = "none"
	if dn, err := m.Member("mnt_devname"); err != nil {
		return fail(err)
	} else if a, err := dn.Uint(); err != nil {
		return fail(err)
	} else if a != 0 {
		s, err := dn.CString()
		if err != nil {
			return fail(err)
		}
		mi.Device = MangleMountField(s)
	}
	path, err := MountPath(m)
	if err != nil {
		return fail(err)
	}
	mi.Path = MangleMountField(path)
	sb, err := m.MemberUint("mnt.mnt_sb")
	if err != nil {
		return fail(err)
	}
	mi.Super = objects.Hex(sb)
	root, err := m.MemberUint("mnt.mnt_root")
	if err != nil {
		return fail(err)
	}
	mi.Root = objects.Hex(root)
	sbv, err := p.ObjectOf("struct super_block", sb)
	if err != nil {
		return fail(err)
	}
	if mi.Type, err = MountFSType(m); err != nil {
		return fail(err)
	}
	if st, err := sbv.Member("s_subtype"); err == nil {
		if a, err := st.Uint(); err == nil && a != 0 {
			if s, err := st.CString(); err == nil && s != "" {
				mi.Type += "." + s
			}
		}
	}
	mflags, err := m.MemberUint("mnt.mnt_flags")
	if err != nil {
		return fail(err)
	}
	sflags, err := sbv.MemberUint("s_flags")
	if err != nil {
		return fail(err)
	}
	opts := "rw"
	if mflags&mntReadonly != 0 || sflags&sbRdonly != 0 {
		opts = "ro"
	}
	for _, o := range sbOpts {
		if sflags&o.bit != 0 {
			opts += o.name
		}
	}
	for _, o := range mntOpts {
		if mflags&o.bit != 0 {
			opts += o.name
		}
	}
	own, ok, err := fsOptions(sbv, root, mi.Type)
	if err != nil {
		return fail(err)
	}
	mi.Options, mi.OwnOptions = opts+own, ok
	return mi, nil
}

// showOptionsFuncs are the show_options of super_operations that
// fsOptions emulates.
var showOptionsFuncs = []string{"shmem_show_options", "ramfs_show_options", "proc_show_options", "kernfs_sop_show_options",
	"bpf_show_options", "debugfs_show_options", "tracefs_show_options"}

// fsOptions is what the filesystem's s_op->show_options adds to a
// mount's options, for the filesystems it knows (ok false for others,
// whose options are left out).
func fsOptions(sb objects.Value, root uint64, fstype string) (string, bool, error) {
	p := sb.Program()
	sop, err := sb.MemberUint("s_op")
	if err != nil || sop == 0 {
		return "", err == nil, err
	}
	fn, err := p.UintAt("struct super_operations", sop, "show_options")
	if err != nil || fn == 0 {
		return "", err == nil, err
	}
	info, err := sb.MemberUint("s_fs_info")
	if err != nil {
		return "", false, err
	}
	var b strings.Builder
	idOpt := func(kind string, v uint64) {
		if v != 0 {
			fmt.Fprintf(&b, ",%s=%d", kind, v)
		}
	}
	switch knownFunc(p, showOptionsFuncs, fn) {
	case "shmem_show_options":
		err = shmemOptions(p, &b, info)
	case "ramfs_show_options":
		// struct ramfs_fs_info { struct ramfs_mount_opts mount_opts; }.
		var mode uint64
		if mode, err = p.UintAt("struct ramfs_fs_info", info, "mount_opts.mode"); err == nil && mode != 0o755 {
			fmt.Fprintf(&b, ",mode=%o", mode)
		}
	case "proc_show_options":
		v, s, rerr := p.ReadStruct("struct proc_fs_info", info)
		if rerr != nil {
			return "", false, rerr
		}
		gid, gerr := v.MemberUint("pid_gid.val")
		if gerr != nil {
			return "", false, gerr
		}
		idOpt("gid", gid)
		if h := s.Uint("hide_pid"); h != 0 {
			name := map[uint64]string{1: "noaccess", 2: "invisible", 4: "ptraceable"}[h]
			if name == "" {
				name = fmt.Sprint(h)
			}
			b.WriteString(",hidepid=" + name)
		}
		if s.OptUint("pidonly") != 0 {
			b.WriteString(",subset=pid")
		}
		err = s.Err()
	case "kernfs_sop_show_options":
		switch fstype {
		case "sysfs":
		case "cgroup2":
			err = cgroup2Options(p, &b)
		default:
			return "", false, nil
		}
	case "bpf_show_options":
		// The root inode's owner and mode (6.1: mode only); BPF token
		// delegation (6.9+) only when none is delegated.
		var ino objects.Value
		if ino, err = p.ObjectOf("struct dentry", root); err == nil {
			ino, err = ino.Path("d_inode")
		}
		if err != nil {
			return "", false, err
		}
		if _, _, e := p.MemberOffset("struct bpf_mount_opts", "delegate_cmds"); e == nil {
			for _, d := range []string{"delegate_cmds", "delegate_maps", "delegate_progs", "delegate_attachs"} {
				if v, err := p.UintAt("struct bpf_mount_opts", info, d); err != nil || v != 0 {
					return "", false, err
				}
			}
			uid, _ := ino.MemberUint("i_uid.val")
			gid, _ := ino.MemberUint("i_gid.val")
			idOpt("uid", uid)
			idOpt("gid", gid)
		}
		mode, err := ino.MemberUint("i_mode")
		if err != nil {
			return "", false, err
		}
		if mode &= 0o7777 &^ 0o1000; mode != 0o777 {
			fmt.Fprintf(&b, ",mode=%o", mode)
		}
	case "debugfs_show_options", "tracefs_show_options":
		// struct debugfs_fs_info / tracefs_fs_info: uid, gid and mode,
		// in mount_opts before 6.6; default mode 0700.
		typ := map[bool]string{true: "struct debugfs_fs_info", false: "struct tracefs_fs_info"}[knownFunc(p, showOptionsFuncs, fn) == "debugfs_show_options"]
		prefix := "mount_opts."
		if _, _, e := p.MemberOffset(typ, "mount_opts"); e != nil {
			prefix = ""
		}
		v, err := p.ObjectOf(typ, info)
		if err != nil {
			return "", false, err
		}
		uid, e1 := v.MemberUint(prefix + "uid.val")
		gid, e2 := v.MemberUint(prefix + "gid.val")
		mode, e3 := v.MemberUint(prefix + "mode")
		if err = errors.Join(e1, e2, e3); err != nil {
			return "", false, err
		}
		idOpt("uid", uid)
		idOpt("gid", gid)
		if mode != 0o700 {
			fmt.Fprintf(&b, ",mode=%o", mode)
		}
	default:
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return b.String(), true, nil
}

// shmemOptions is shmem_show_options: size and nr_inodes where they
// differ from the defaults (half of totalram_pages), mode where not
// 1777, owner, huge, inode64.
func shmemOptions(p *objects.Program, b *strings.Builder, info uint64) error {
	v, s, err := p.ReadStruct("struct shmem_sb_info", info)
	if err != nil {
		return err
	}
	tr, err := p.Variable("_totalram_pages")
	if err != nil {
		return err
	}
	total, err := tr.MemberUint("counter")
	if err != nil {
		return err
	}
	if mb := s.Uint("max_blocks"); mb != total/2 {
		fmt.Fprintf(b, ",size=%dk", mb<<2)
	}
	if mi := s.Uint("max_inodes"); mi != total/2 {
		fmt.Fprintf(b, ",nr_inodes=%d", mi)
	}
	if mode := s.Uint("mode"); mode != 0o1777 {
		fmt.Fprintf(b, ",mode=%03o", mode)
	}
	for _, id := range []string{"uid", "gid"} {
		n, err := v.MemberUint(id + ".val")
		if err != nil {
			return err
		}
		if n != 0 {
			fmt.Fprintf(b, ",%s=%d", id, n)
		}
	}
	if h := s.OptUint("huge"); h != 0 {
		name := map[uint64]string{1: "always", 2: "within_size", 3: "advise"}[h]
		if name == "" {
			name = fmt.Sprint(int32(h))
		}
		b.WriteString(",huge=" + name)
	}
	if s.OptUint("full_inums") != 0 {
		b.WriteString(",inode64")
	}
	if s.OptUint("noswap") != 0 {
		b.WriteString(",noswap")
	}
	return s.Err()
}

// cgroup2Options is cgroup_show_options of the default hierarchy: its
// root's flags.
func cgroup2Options(p *objects.Program, b *strings.Builder) error {
	root, err := p.Variable("cgrp_dfl_root")
	if err != nil {
		return err
	}
	flags, err := root.MemberUint("flags")
	if err != nil {
		return err
	}
	for _, f := range []struct{ enum, name string }{
		{"CGRP_ROOT_NS_DELEGATE", "nsdelegate"},
		{"CGRP_ROOT_FAVOR_DYNMODS", "favordynmods"},
		{"CGRP_ROOT_MEMORY_LOCAL_EVENTS", "memory_localevents"},
		{"CGRP_ROOT_MEMORY_RECURSIVE_PROT", "memory_recursiveprot"},
		{"CGRP_ROOT_MEMORY_HUGETLB_ACCOUNTING", "memory_hugetlb_accounting"},
		{"CGRP_ROOT_PIDS_LOCAL_EVENTS", "pids_localevents"},
	} {
		if bit, err := p.Enumerator(f.enum); err == nil && flags&bit != 0 {
			b.WriteString("," + f.name)
		}
	}
	return nil
}

// Mounts reads the mounts of namespace ns as /proc/mounts lists them. A
// mount that cannot be read is a row with its Error, and the walk goes on;
// a damaged link of the namespace's tree or list is noted in the
// Program's damage log and passed. A walk that fails returns what it read
// before.
func Mounts(ns objects.Value) ([]MountInfo, error) {
	var out []MountInfo
	walk := fmt.Sprintf("mounts of namespace %#x", ns.Addr())
	for m, err := range ForEachMount(ns) {
		if ns.Program().DamageOf(err, walk) != nil {
			continue
		}
		if err != nil {
			return out, err
		}
		mi, err := NewMountInfo(m)
		if err != nil {
			out = append(out, MountInfo{Mount: objects.Hex(m.Addr()), Error: err.Error()})
			ns.Program().NoteDamage(&objects.Damage{Walk: walk, Addr: objects.Hex(m.Addr()),
				Object: "struct mount", Expected: "a readable mount", Err: err})
			continue
		}
		out = append(out, *mi)
	}
	return out, nil
}
