package linux

import (
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// kernel is a synthetic kernel (synthkernel.Kernel: BTF declaring the
// members the walkers read, named and typed as the kernel's headers
// define them) opened as a Program.
type kernel struct {
	*sk.Kernel
	p *objects.Program
	// exports counts the export tables addModule laid out.
	exports uint64
}

// newKernel builds the kernel of layout l: two CPUs and an init_task
// whose tasks list is empty; the tests then fill its memory.
func newKernel(t *testing.T, l sk.LinuxLayout) *kernel {
	k := &kernel{Kernel: sk.NewKernel(l)}
	k.p = objects.NewProgram(k.M, k.B.Spec(t), k.Syms, objects.WithLimit(1000))
	return k
}

// value is the Program's object of the named struct at addr.
func (k *kernel) value(t *testing.T, name string, addr uint64) objects.Value {
	t.Helper()
	v, err := k.p.ObjectOf("struct "+name, addr)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
