package linux

import (
	"errors"
	"fmt"
	"github.com/kinspect/kinspect/objects"
	"iter"
)

// Walkers of the dentry cache (include/linux/dcache.h, fs/libfs.c).
// Dentries are struct dentry objects.

// ForEachDentryChild yields the children of dentry (positive or not) in
// the order of its list of children, the order dcache_readdir lists a
// libfs directory in: newest first, as d_alloc adds each at the head.
// The list is the hlist d_children linked by d_sib (6.8+, da549bdd15c2
// "dentry: switch the lists of children to hlist"), else the list
// d_subdirs linked by d_child.
func ForEachDentryChild(dentry objects.Value) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		var walk iter.Seq2[objects.Value, error]
		if h, err := dentry.Member("d_children"); err == nil {
			walk = objects.HlistForEachEntry(h, "struct dentry", "d_sib")
		} else if l, lerr := dentry.Member("d_subdirs"); lerr == nil {
			walk = objects.ListForEachEntry(l, "struct dentry", "d_child")
		} else {
			yield(objects.Value{}, fmt.Errorf("children of dentry: %w", errors.Join(err, lerr)))
			return
		}
		for c, err := range walk {
			if !yield(c, err) || err != nil {
				return
			}
		}
	}
}

// SimplePositive says whether a dentry names a live file, as libfs's
// simple_positive: it has an inode and is hashed (d_hash.pprev set).
// Cursors of open directories, which sit on the same lists, have no
// inode.
func SimplePositive(dentry objects.Value) (bool, error) {
	ino, err := dentry.MemberUint("d_inode")
	if err != nil || ino == 0 {
		return false, err
	}
	pprev, err := dentry.MemberUint("d_hash.pprev")
	return pprev != 0, err
}

// The file type bits of an inode's i_mode (include/uapi/linux/stat.h).
const (
	sIFMT  = 0o170000
	sIFDIR = 0o040000
)

// IsDir says whether an inode's i_mode is a directory's (S_ISDIR).
func IsDir(mode uint64) bool { return mode&sIFMT == sIFDIR }
