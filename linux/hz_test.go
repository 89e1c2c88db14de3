package linux

import "testing"

// TestHZFrom: INITIAL_JIFFIES is (u32)(-300*HZ); each case is jiffies_64
// at some seconds of monotonic time for one HZ (the first from a 6.1
// guest under TCG, kinspect --live, whose jiffies trailed the clock by
// 4 s; the others computed from the definition).
func TestHZFrom(t *testing.T) {
	initial := func(hz uint64) uint64 { return uint64(uint32(-300 * int64(hz))) }
	tests := []struct {
		jiffies uint64
		secs    float64
		want    uint64
	}{
		{4295047723, 625.938, 250},
		{initial(250) + 250*30, 30.2, 250},
		{initial(100) + 100*5000, 5000.5, 100},
		{initial(300) + 300*2, 2.1, 300},
		{initial(1000) + 1000*86400, 86400.3, 1000},
		{initial(250) + 250*12, 12, 250},
	}
	for _, tt := range tests {
		if got, ok := hzFrom(tt.jiffies, tt.secs); !ok || got != tt.want {
			t.Errorf("hzFrom(%d, %.1f) = %d, %v; want %d", tt.jiffies, tt.secs, got, ok, tt.want)
		}
	}
	if got, ok := hzFrom(12345, 100); ok {
		t.Errorf("hzFrom(12345, 100) = %d: want none", got)
	}
}
