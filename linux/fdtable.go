package linux

import (
	"fmt"
	"github.com/kinspect/kinspect/objects"
	"iter"
)

// Walkers of a task's open files (include/linux/fdtable.h, fs/file.c).

// maxFDs bounds the fd table a task may claim: sysctl fs.nr_open cannot
// exceed INT_MAX & -BITS_PER_LONG, but no dump holds a table of more
// than this many pointers.
const maxFDs = 1 << 26

// TaskFile is an open file of a task.
type TaskFile struct {
	FD   int
	File objects. // struct file
		Value
}

// ForEachFile yields the open files of task (a struct task_struct,
// or a pointer to one) in fd order, as iterate_fd walks
// task->files->fdt: every non-NULL slot of fdt->fd below fdt->max_fds.
// A task without a files table (exiting, or an idle task) has none.
func ForEachFile(task objects.Value) iter.Seq2[TaskFile, error] {
	return func(yield func(TaskFile, error) bool) {
		p := task.Program()
		ta, err := objects.ObjectAddr(task, "iterate_fd")
		if err != nil {
			yield(TaskFile{}, err)
			return
		}
		fail := func(err error) { yield(TaskFile{}, fmt.Errorf("files of task %#x: %w", ta, err)) }
		files, err := task.MemberUint("files")
		if err != nil {
			fail(err)
			return
		}
		if files == 0 {
			return
		}
		fdt, err := p.UintAt("struct files_struct", files, "fdt")
		if err != nil {
			fail(err)
			return
		}
		max, err := p.UintAt("struct fdtable", fdt, "max_fds")
		if err != nil {
			fail(err)
			return
		}
		arr, err := p.UintAt("struct fdtable", fdt, "fd")
		if err != nil {
			fail(err)
			return
		}
		if max > maxFDs {
			fail(fmt.Errorf("fdtable %#x: max_fds %d: %w", fdt, max, objects.ErrCorrupt))
			return
		}
		ft, err := p.Type("struct file")
		if err != nil {
			fail(err)
			return
		}
		const chunk = 512
		for base := uint64(0); base < max; base += chunk {
			n := min(chunk, max-base)
			ptrs, err := p.ReadPointers(arr+8*base, int(n))
			if err != nil {
				fail(fmt.Errorf("fdtable %#x: fd[%d..%d]: %w", fdt, base, base+n, err))
				return
			}
			for i, f := range ptrs {
				if f == 0 {
					continue
				}
				if !yield(TaskFile{FD: int(base) + i, File: p.Object(ft, f)}, nil) {
					return
				}
			}
		}
	}
}
