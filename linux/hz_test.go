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

// TestHZFromTick: tick_nsec is NSEC_PER_SEC/HZ, moved by NTP's frequency
// adjustment (±500 ppm at most); the 4,000,000 is a 6.1 and a 6.12 lab
// guest's (HZ 250), read from their dumps.
func TestHZFromTick(t *testing.T) {
	for _, tt := range []struct{ tick, want uint64 }{
		{4_000_000, 250}, {4_001_999, 250}, {10_000_000, 100}, {3_333_333, 300}, {3_334_900, 300}, {1_000_000, 1000}, {999_500, 1000},
	} {
		if got, ok := hzFromTick(tt.tick); !ok || got != tt.want {
			t.Errorf("hzFromTick(%d) = %d, %v; want %d", tt.tick, got, ok, tt.want)
		}
	}
	for _, tick := range []uint64{0, 2_000_000, 5_000_000, 1 << 40} {
		if got, ok := hzFromTick(tick); ok {
			t.Errorf("hzFromTick(%d) = %d: want none", tick, got)
		}
	}
}
