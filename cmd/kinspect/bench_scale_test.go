package main

import (
	"io"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// scaleCommands are crash's and drgn's everyday commands, as a user runs
// them on the scale scenario (2 GB, 2,000+ tasks, 510 BPF programs).
var scaleCommands = []string{
	"kmem -s", "kmem -i", "kmem -v", "kmem init_task", "files 1", "mount", "vm 1", "net", "net --link -d", "net --bpf", "irq",
	"timer", "runq", "uptime", "mod", "mod -t", "dev", "dis schedule", "btf funcs --arg sk_buff*",
	"rd init_task 64", "struct task_struct init_task", "sym -l", "cgroup tree", "task 1", "sig 1",
	"print runqueues:a", "whatis task_struct", "ps", "prog show", "bt -a",
}

// BenchmarkCommandsScale runs each command whole, the dump opened each
// time, as a user runs it: go test ./cmd/kinspect -run - -bench
// CommandsScale -benchtime 5x. Issue 15 asks each (but whole-memory
// walks) to take under 0.5 s.
func BenchmarkCommandsScale(b *testing.B) {
	s := labdata.Require(b, "scale")
	for _, f := range []string{"elf", "kdump-zlib"} {
		for _, c := range scaleCommands {
			b.Run(f+"/"+strings.ReplaceAll(c, " ", "_"), func(b *testing.B) {
				args := append([]string{"-c", s.Path("dumps/" + f)}, strings.Fields(c)...)
				for b.Loop() {
					if code := run(args, io.Discard, io.Discard); code != 0 && code != 3 {
						b.Fatalf("%s: exit %d", c, code)
					}
				}
			})
		}
	}
}
