package linux

import (
	"errors"
	"fmt"
	"github.com/kinspect/kinspect/objects"
	"iter"
	"strings"
)

// Walkers of a task's open files (include/linux/fdtable.h, fs/file.c).

// maxFDs bounds the fd table a task may claim: sysctl fs.nr_open cannot
// exceed INT_MAX & -BITS_PER_LONG, but no dump holds a table of more
// than this many pointers.
const maxFDs = 1 << 26

// TaskFile is an open file of a task.
type TaskFile struct {
	FD   int
	File objects.Value // struct file
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
				// A page of the array missing from a filtered dump
				// (often all NULL: makedumpfile drops zero pages) hides
				// only its own fds.
				if !yield(TaskFile{}, fmt.Errorf("files of task %#x: fdtable %#x: fd[%d..%d]: %w", ta, fdt, base, base+n, err)) {
					return
				}
				continue
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

// OpenFile is an open file of a task as crash's files command shows it,
// with the link /proc/PID/fd/FD is: the path d_path gives, and the
// permissions of the link (proc_fd_link: r-x when open for reading,
// -wx for writing).
type OpenFile struct {
	FD     int         `json:"fd"`
	File   objects.Hex `json:"file"`
	Dentry objects.Hex `json:"dentry"`
	Inode  objects.Hex `json:"inode"`
	// Type is the inode's file type as crash names it: REG, DIR, CHR,
	// BLK, FIFO, SOCK, LNK, or UNKN (an anonymous inode has none).
	Type string `json:"type"`
	// Path is where /proc/PID/fd/FD links to.
	Path string `json:"path"`
	// Mode is "r", "w" or "rw": f_mode's FMODE_READ and FMODE_WRITE.
	Mode string `json:"mode"`
	// Flags are f_flags (O_* of open(2)); Pos is f_pos.
	Flags uint64 `json:"flags"`
	Pos   int64  `json:"pos"`
	// Err says why Path (or more) could not be read; the rest is what
	// could be.
	Err string `json:"error,omitempty"`
}

// FileTypeName names the file type of an inode's i_mode as crash's
// files does.
func FileTypeName(mode uint64) string {
	switch mode & sIFMT {
	case 0o100000:
		return "REG"
	case sIFDIR:
		return "DIR"
	case 0o020000:
		return "CHR"
	case 0o060000:
		return "BLK"
	case 0o010000:
		return "FIFO"
	case 0o140000:
		return "SOCK"
	case 0o120000:
		return "LNK"
	}
	return "UNKN"
}

// The f_mode bits of include/linux/fs.h that OpenFile reads.
const (
	fmodeRead  = 0x1
	fmodeWrite = 0x2
)

// NewOpenFile reads what files shows of an open file at fd. A file
// whose path cannot be read keeps the error in Err.
func NewOpenFile(fd int, file objects.Value) (OpenFile, error) {
	p := file.Program()
	fa, err := objects.ObjectAddr(file, "read file")
	if err != nil {
		return OpenFile{}, err
	}
	o := OpenFile{FD: fd, File: objects.Hex(fa)}
	_, s, err := p.ReadStruct("struct file", fa)
	if err != nil {
		return o, fmt.Errorf("fd %d: %w", fd, err)
	}
	f, _ := p.ObjectOf("struct file", fa)
	dentry, err := f.MemberUint("f_path.dentry")
	if err != nil {
		return o, fmt.Errorf("fd %d: file %#x: %w", fd, fa, err)
	}
	o.Dentry = objects.Hex(dentry)
	o.Inode = objects.Hex(s.Uint("f_inode"))
	mode := s.Uint("f_mode")
	o.Flags = s.Uint("f_flags")
	o.Pos = int64(s.Uint("f_pos"))
	if err := s.Err(); err != nil {
		return o, fmt.Errorf("fd %d: file %#x: %w", fd, fa, err)
	}
	switch {
	case mode&fmodeRead != 0 && mode&fmodeWrite != 0:
		o.Mode = "rw"
	case mode&fmodeWrite != 0:
		o.Mode = "w"
	case mode&fmodeRead != 0:
		o.Mode = "r"
	}
	o.Type = "UNKN"
	if o.Inode != 0 {
		im, err := p.UintAt("struct inode", uint64(o.Inode), "i_mode")
		if err != nil {
			o.Err = err.Error()
			return o, nil
		}
		o.Type = FileTypeName(im)
	}
	if o.Path, err = FilePath(f); err != nil {
		o.Err = err.Error()
	}
	return o, nil
}

// TaskFiles reads the open files of a task in fd order (crash's files,
// ls -l /proc/PID/fd). A file that cannot be read at all ends the list
// with the error; one whose path cannot be read has it in Err.
func TaskFiles(task objects.Value) ([]OpenFile, error) {
	var out []OpenFile
	for tf, err := range ForEachFile(task) {
		if err != nil {
			return out, err
		}
		o, err := NewOpenFile(tf.FD, tf.File)
		if err != nil {
			return out, err
		}
		out = append(out, o)
	}
	return out, nil
}

// TaskFilesInfo is what crash's files shows of a task: its root and
// working directory and its open files.
type TaskFilesInfo struct {
	Task objects.Hex `json:"task"`
	PID  int         `json:"pid"` // the thread group
	TID  int         `json:"tid"`
	Comm string      `json:"comm"`
	// Root and Cwd are task->fs->root and pwd as d_path shows them (""
	// for a task without fs_struct).
	Root  string     `json:"root"`
	Cwd   string     `json:"cwd"`
	Files []OpenFile `json:"files"`
	// Error says what of the root and working directory could not be
	// read (the open files are listed all the same).
	Error string `json:"error,omitempty"`
}

// PathString is d_path of a struct path (a value of that type).
func PathString(path objects.Value) (string, error) {
	vm, err := path.Member("mnt")
	if err != nil {
		return "", err
	}
	d, err := path.Member("dentry")
	if err != nil {
		return "", err
	}
	mnt, err := objects.ContainerOf(vm, "struct mount", "mnt")
	if err != nil {
		return "", err
	}
	return DPath(mnt, d)
}

// ReadTaskFiles reads a task's root, working directory and open files.
func ReadTaskFiles(task objects.Value) (*TaskFilesInfo, error) {
	t, err := NewTask(task)
	if err != nil {
		return nil, err
	}
	out := &TaskFilesInfo{Task: objects.Hex(t.Addr), PID: t.PID, TID: t.TID, Comm: t.Comm, Files: []OpenFile{}}
	var dirErrs []error
	tv, _ := task.Program().ObjectOf("struct task_struct", t.Addr)
	if fs, err := tv.MemberUint("fs"); err != nil {
		return nil, err
	} else if fs != 0 {
		for _, x := range []struct {
			path string
			dst  *string
		}{{"fs->root", &out.Root}, {"fs->pwd", &out.Cwd}} {
			pv, err := tv.Path(x.path)
			if err == nil {
				*x.dst, err = PathString(pv)
			}
			if err != nil {
				// A page the dump lacks costs this path, not the files.
				dirErrs = append(dirErrs, fmt.Errorf("task %#x: %s: %w", t.Addr, x.path, err))
			}
		}
	}
	if err := errors.Join(dirErrs...); err != nil {
		out.Error = strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	files, err := TaskFiles(tv)
	if files != nil {
		out.Files = files
	}
	return out, errors.Join(append(dirErrs, err)...)
}
