package linux

import (
	"fmt"
	"strings"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// devKernel is a kernel with the device hashes' types and variables
// (chrdevs, major_names: 255 buckets each).
func devKernel(t *testing.T) (*kernel, sk.Obj, sk.Obj) {
	k := &kernel{Kernel: sk.NewKernel(sk.LinuxLayout{})}
	b := k.B
	cd := b.Decl("char_device_struct")
	b.Struct("char_device_struct", sk.F("next", sk.Ptr(cd)), sk.F("major", b.U32), sk.F("baseminor", b.U32),
		sk.F("minorct", b.Int), sk.F("name", b.Array(b.Char, 64)), sk.F("cdev", b.VoidPtr))
	bm := b.Decl("blk_major_name")
	b.Struct("blk_major_name", sk.F("next", sk.Ptr(bm)), sk.F("major", b.Int), sk.F("name", b.Array(b.Char, 16)), sk.F("probe", b.VoidPtr))
	chr := k.M.Obj(b.Array(sk.Ptr(cd), 255), k.M.Global(k.Syms, "chrdevs", 255*8))
	blk := k.M.Obj(b.Array(sk.Ptr(bm), 255), k.M.Global(k.Syms, "major_names", 255*8))
	k.p = objects.NewProgram(k.M, k.B.Spec(t), k.Syms, objects.WithLimit(1000))
	return k, chr, blk
}

// TestDevices: majors in /proc/devices' order (by major, each region
// of a major in chain order, a bucket holding majors 4 and 259 read
// for each); a chain with a cycle is cut there and noted as damage.
func TestDevices(t *testing.T) {
	k, chr, blk := devKernel(t)
	chain := func(head uint64, typ string, devs ...[3]any) []sk.Obj {
		var objs []sk.Obj
		for _, d := range devs {
			o := k.New(typ).Set("major", uint64(d[0].(int))).Str("name", d[1].(string))
			if typ == "char_device_struct" {
				o.Set("baseminor", uint64(d[2].(int))).Set("minorct", 1)
			}
			objs = append(objs, o)
		}
		for i := len(objs) - 1; i >= 0; i-- {
			next := uint64(0)
			if i+1 < len(objs) {
				next = objs[i+1].Addr
			}
			objs[i].Set("next", next)
		}
		k.M.U64(head, objs[0].Addr)
		return objs
	}
	chain(chr.Addr+4*8, "char_device_struct", [3]any{4, "tty", 1}, [3]any{4, "ttyS", 64}, [3]any{259, "late", 0})
	chain(chr.Addr+1*8, "char_device_struct", [3]any{1, "mem", 0})
	chain(blk.Addr+4*8, "blk_major_name", [3]any{259, "blkext", 0})
	devs, err := Devices(k.p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range devs {
		got = append(got, fmt.Sprintf("%s %d %s %d", d.Kind, d.Major, d.Name, d.BaseMinor))
	}
	if s := strings.Join(got, ", "); s != "char 1 mem 0, char 4 tty 1, char 4 ttyS 64, char 259 late 0, block 259 blkext 0" {
		t.Errorf("devices: %s", s)
	}
	// A cycle: mem's next is itself.
	cyc := chain(chr.Addr+2*8, "char_device_struct", [3]any{2, "loop", 0})
	cyc[0].Set("next", cyc[0].Addr)
	devs, err = Devices(k.p)
	if err != nil || len(devs) != 6 {
		t.Fatalf("with a cycle: %d devices, %v", len(devs), err)
	}
	if dm := k.p.Damaged(); len(dm) != 1 || !strings.Contains(dm[0].Error(), "chrdevs[2]") {
		t.Errorf("damage %v", dm)
	}
}
