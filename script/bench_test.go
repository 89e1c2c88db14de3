package script

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/linux"
)

func benchKernel(b *testing.B, scenario, format string) *labKernel {
	return openLab(b, labdata.Require(b, scenario), format)
}

// BenchmarkMemberAccess reads members of init_task from JS: 4 member
// reads per iteration of the JS loop.
func BenchmarkMemberAccess(b *testing.B) {
	k := benchKernel(b, "basic", "elf")
	e := k.engine(b, &bytes.Buffer{})
	src := fmt.Sprintf(`{ const t = kernel.var("init_task"); let s = 0; for (let i = 0; i < %d; i++) { s += t.pid + t.tgid + t.prio + t.static_prio } s }`, b.N)
	b.ResetTimer()
	if _, err := e.Run(context.Background(), "bench.js", src); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(4*b.N)/b.Elapsed().Seconds(), "members/s")
}

const walkJS = `{ const out = []; for (const t of kernel.tasks()) out.push(t.pid + " " + t.comm + " " + kernel.taskState(t)); print(out.join("\n")) }`

// BenchmarkWalkTasksJS is the task walk of the scale dump from JS:
// pid, comm and state of every task, printed.
func BenchmarkWalkTasksJS(b *testing.B) {
	k := benchKernel(b, "scale", "elf")
	for b.Loop() {
		var out bytes.Buffer
		e := k.engine(b, &out)
		if _, err := e.Run(context.Background(), "walk.js", walkJS); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWalkTasksGo is the same walk in Go.
func BenchmarkWalkTasksGo(b *testing.B) {
	k := benchKernel(b, "scale", "elf")
	for b.Loop() {
		var out bytes.Buffer
		var lines []string
		for t, err := range linux.ForEachTask(k.k.Program()) {
			if err != nil {
				b.Fatal(err)
			}
			pv, _ := t.Member("pid")
			pid, _ := pv.Int()
			cv, _ := t.Member("comm")
			comm, _ := cv.CString()
			st, err := linux.ReadTaskState(t)
			if err != nil {
				b.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%d %s %c", pid, comm, st.Letter()))
		}
		out.WriteString(strings.Join(lines, "\n"))
	}
}

// BenchmarkOverview runs samples/overview.js on the scale dump: every
// task with its stack, every BPF program and map.
func BenchmarkOverview(b *testing.B) {
	k := benchKernel(b, "scale", "elf")
	src, err := os.ReadFile("../samples/overview.js")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var out bytes.Buffer
		e := k.engine(b, &out, "--json")
		if _, err := e.Run(context.Background(), "overview.js", string(src)); err != nil {
			b.Fatal(err)
		}
	}
}
