package objects

import (
	"testing"
)

// BenchmarkMemberAccess reads init_task.pid through a member lookup each
// time (cached member offsets, one 4-byte read through the dump).
func BenchmarkMemberAccess(b *testing.B) {
	progs := labProgramsB(b)
	for name, p := range progs {
		task, err := p.Variable("init_task")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				v, err := task.Member("pid")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := v.Int(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTaskWalk walks init_task.tasks reading each pid and comm.
func BenchmarkTaskWalk(b *testing.B) {
	for name, p := range labProgramsB(b) {
		b.Run(name, func(b *testing.B) {
			head, err := p.Eval("init_task.tasks")
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				for task, err := range ListForEachEntry(head, "struct task_struct", "tasks") {
					if err != nil {
						b.Fatal(err)
					}
					pid, _ := task.Member("pid")
					pid.Int()
					c, _ := task.Member("comm")
					c.CString()
				}
			}
		})
	}
}

func labProgramsB(b *testing.B) map[string]*Program {
	return labProgramsTB(b, "elf", "kdump-zlib")
}
