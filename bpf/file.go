package bpf

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// The fds that refer to BPF objects (kernel/bpf/syscall.c's
// bpf_prog_fops, bpf_map_fops, bpf_link_fops): what bpftool's pid_iter
// BPF program, a task_file iterator (kernel/bpf/task_iter.c), reports
// for the "pids" of "prog|map|link show".

// File is an fd of a task referring to a BPF program, map or link.
type File struct {
	// PID is the task's thread group (what userspace calls its process
	// ID), TID the task's own ID; Comm the thread group leader's comm.
	PID  int     `json:"pid"`
	TID  int     `json:"tid"`
	Comm string  `json:"comm"`
	FD   int     `json:"fd"`
	Type ObjType `json:"kind"`
	ID   uint32  `json:"id"`
	// File is the struct file; Obj its private_data, the struct
	// bpf_prog, bpf_map or bpf_link.
	File objects.Value `json:"file"`
	Obj  objects.Value `json:"obj"`
	// Cookie is a perf_event link's BPF cookie (its perf event's
	// bpf_cookie, 5.15+), which pid_iter reports with the link's
	// holders; HasCookie says the link is one.
	Cookie    uint64 `json:"bpf_cookie,omitempty" js:"bigint"`
	HasCookie bool   `json:"-"`
}

// FileForEach yields the fds of every task that refer to BPF
// programs, maps and links (file->f_op is bpf_prog_fops, bpf_map_fops
// or bpf_link_fops), in the order bpftool's pid_iter meets them through
// the task_file iterator: tasks by ascending thread ID, each task's fds
// in order, a thread that shares its group leader's files table skipped
// (task_seq_get_next's skip_if_dup_files). Errors reading one task's
// table are yielded and the walk goes on with the next task.
func FileForEach(p *objects.Program) iter.Seq2[File, error] {
	return func(yield func(File, error) bool) {
		fops := bpfObjSyms(p, false)
		if len(fops) == 0 {
			yield(File{}, fmt.Errorf("bpf files: no symbol bpf_prog_fops, bpf_map_fops or bpf_link_fops: %w", objects.ErrNotFound))
			return
		}
		type task struct {
			tid  int
			task objects.Value
		}
		var tasks []task
		for t, err := range linux.ForEachTask(p) {
			if err != nil {
				yield(File{}, err)
				return
			}
			tid, err := t.MemberInt("pid")
			if err != nil {
				yield(File{}, err)
				return
			}
			tasks = append(tasks, task{int(tid), t})
		}
		slices.SortStableFunc(tasks, func(a, b task) int { return cmp.Compare(a.tid, b.tid) })
		for _, tk := range tasks {
			t := tk.task
			ta, _ := t.Address()
			leader, err := t.MemberUint("group_leader")
			var files, leaderFiles uint64
			if err == nil {
				files, err = t.MemberUint("files")
			}
			if err == nil && leader != ta && leader != 0 {
				leaderFiles, err = p.UintAt("struct task_struct", leader, "files")
				if err == nil && files == leaderFiles {
					continue
				}
			}
			var tgid int64
			if err == nil {
				tgid, err = t.MemberInt("tgid")
			}
			comm := ""
			if err == nil {
				var lv, c objects.Value
				if lv, err = p.ObjectOf("struct task_struct", leader); err == nil {
					if c, err = lv.Member("comm"); err == nil {
						comm, err = c.CString()
					}
				}
			}
			if err != nil {
				if !yield(File{}, fmt.Errorf("task %d: %w", tk.tid, err)) {
					return
				}
				continue
			}
			for tf, err := range linux.ForEachFile(t) {
				if err != nil {
					if !yield(File{}, fmt.Errorf("task %d: %w", tk.tid, err)) {
						return
					}
					continue
				}
				fop, err := tf.File.MemberUint("f_op")
				if err != nil {
					if !yield(File{}, fmt.Errorf("task %d fd %d: %w", tk.tid, tf.FD, err)) {
						return
					}
					continue
				}
				typ, ok := fops[fop]
				if !ok {
					continue
				}
				bf := File{PID: int(tgid), TID: tk.tid, Comm: comm, FD: tf.FD, Type: typ, File: tf.File}
				priv, err := tf.File.MemberUint("private_data")
				if err == nil {
					bf.Obj, err = bpfObject(p, typ, priv)
				}
				if err == nil {
					bf.ID, err = bpfObjID(p, typ, priv)
				}
				if err == nil && typ == ObjLink {
					bf.Cookie, bf.HasCookie, err = perfLinkCookie(bf.Obj)
				}
				if err != nil {
					err = fmt.Errorf("task %d fd %d: %w", tk.tid, tf.FD, err)
				}
				if !yield(bf, err) {
					return
				}
			}
		}
	}
}

// perfLinkCookie reads the BPF cookie of a perf_event link, as
// pid_iter's get_bpf_cookie: container_of(link, struct bpf_perf_link,
// link)->perf_file->private_data->bpf_cookie. Other links have none.
func perfLinkCookie(link objects.Value) (uint64, bool, error) {
	t, err := link.Member("type")
	if err != nil {
		return 0, false, err
	}
	if typ, err := t.Uint(); err != nil || typ != LinkTypePerfEvent {
		return 0, false, err
	}
	pl, err := objects.ContainerOf(link, "struct bpf_perf_link", "link")
	if err != nil {
		return 0, true, err
	}
	ev, err := pl.Path("perf_file->private_data")
	if err != nil {
		return 0, true, err
	}
	ea, err := ev.Uint()
	if err != nil {
		return 0, true, err
	}
	c, err := link.Program().UintAt("struct perf_event", ea, "bpf_cookie")
	if errors.Is(err, objects.ErrNotFound) {
		return 0, false, nil // before 5.15 (82e6b1eee6a8 "bpf: Allow to specify user-provided bpf_cookie for BPF perf links")
	}
	return c, true, err
}
