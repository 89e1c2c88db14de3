package orc

import (
	"encoding/binary"
	"errors"
	"testing"
)

// makeTable lays out entries at the given addresses as the kernel keeps
// them: each ip an s32 relative to its own slot at ipAddr.
func makeTable(ipAddr uint64, addrs []uint64, entries [][]byte) ([]byte, []byte) {
	ips := make([]byte, len(addrs)*rawIPSize)
	for i, a := range addrs {
		binary.LittleEndian.PutUint32(ips[i*rawIPSize:], uint32(int32(int64(a-(ipAddr+uint64(i*rawIPSize))))))
	}
	var orcs []byte
	for _, e := range entries {
		orcs = append(orcs, e...)
	}
	return ips, orcs
}

func TestTableFind(t *testing.T) {
	l, _ := defaultLayout(FormatTypes, "test")
	const ipAddr = 0xffffffff82000000
	addrs := []uint64{0xffffffff81000000, 0xffffffff81000010, 0xffffffff81000010, 0xffffffff81000040}
	entries := [][]byte{
		rawBytes(8, 0, 5|2<<8),  // call sp+8
		rawBytes(0, 0, 0),       // a weak terminator, sorted first
		rawBytes(16, 0, 5|2<<8), // the real entry at the same address
		rawBytes(0, 0, 1<<8),    // end
	}
	ips, orcs := makeTable(ipAddr, addrs, entries)
	tab, err := NewTable("test", ipAddr, ips, orcs, l)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip    uint64
		index int
		sp    int16
	}{
		{0xffffffff80ffffff, 0, 8}, // below all: the first, as __orc_find
		{0xffffffff81000000, 0, 8},
		{0xffffffff8100000f, 0, 8},
		{0xffffffff81000010, 2, 16}, // the rightmost duplicate
		{0xffffffff8100003f, 2, 16},
		{0xffffffff81000040, 3, 0},
		{0xffffffffffffffff, 3, 0},
	}
	for _, tt := range tests {
		e, i, ok := tab.Find(tt.ip)
		if !ok || i != tt.index || e.SPOffset != tt.sp {
			t.Errorf("Find(%#x) = %v, %d, %v; want index %d sp %d", tt.ip, e, i, ok, tt.index, tt.sp)
		}
	}
	if got := tab.IP(3); got != addrs[3] {
		t.Errorf("IP(3) = %#x, want %#x", got, addrs[3])
	}
}

func TestNewTableErrors(t *testing.T) {
	l, _ := defaultLayout(FormatEnd, "test")
	const ipAddr = 0xffffffff82000000
	sorted, orcs := makeTable(ipAddr, []uint64{0xffffffff81000000, 0xffffffff81000010}, [][]byte{rawBytes(8, 0, 5), rawBytes(8, 0, 5)})
	unsorted, _ := makeTable(ipAddr, []uint64{0xffffffff81000010, 0xffffffff81000000}, nil)
	tests := []struct {
		name      string
		ips, orcs []byte
	}{
		{"odd ip bytes", sorted[:7], orcs},
		{"odd orc bytes", sorted, orcs[:11]},
		{"count mismatch", sorted[:4], orcs},
		{"unsorted", unsorted, orcs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTable("test", ipAddr, tt.ips, tt.orcs, l)
			var fe *FormatError
			if !errors.Is(err, ErrFormat) || !errors.As(err, &fe) {
				t.Fatalf("err %v, want a *FormatError", err)
			}
		})
	}
	empty, err := NewTable("empty", ipAddr, nil, nil, l)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := empty.Find(1); ok {
		t.Error("Find in an empty table found something")
	}
}

// FuzzNewTable feeds arbitrary bytes to the ORC table parser and lookup:
// they must give an error or a table whose lookups stay in bounds.
func FuzzNewTable(f *testing.F) {
	ips, orcs := makeTable(0xffffffff82000000, []uint64{0xffffffff81000000, 0xffffffff81000010, 0xffffffff81000040},
		[][]byte{rawBytes(8, 0, 5|2<<8), rawBytes(16, -16, 4|1<<4|2<<8), rawBytes(0, 0, 1<<8)})
	f.Add(ips, orcs, uint64(0xffffffff82000000), uint64(0xffffffff81000011), uint8(FormatTypes))
	f.Add(ips, orcs, uint64(0xffffffff82000000), uint64(0), uint8(FormatEnd))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f}, []byte{1, 2, 3, 4, 5, 6}, uint64(1<<63), uint64(1<<63), uint8(FormatSignal))
	for _, s := range labSeeds(f) {
		f.Add(s.ips, s.orcs, s.ipAddr, s.ip, uint8(s.format))
	}
	f.Fuzz(func(t *testing.T, ips, orcs []byte, ipAddr, ip uint64, format uint8) {
		l, err := defaultLayout(Format(format%4), "fuzz")
		if err != nil {
			return
		}
		tab, err := NewTable("fuzz", ipAddr, ips, orcs, l)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		e, i, ok := tab.Find(ip)
		if ok && (i < 0 || i >= tab.Len()) {
			t.Fatalf("Find returned index %d of %d", i, tab.Len())
		}
		_ = e.String()
		for j := range tab.Len() {
			if _, err := tab.Entry(j); err != nil {
				t.Fatal(err)
			}
		}
	})
}
