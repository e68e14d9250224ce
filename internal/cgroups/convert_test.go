package cgroups

import (
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestCPUSharesToWeight(t *testing.T) {
	for _, c := range []struct{ shares, want uint64 }{
		{0, 0},
		{1, 1},
		{2, 1},
		{1024, 100}, // the defaults map onto each other
		{262144, 10000},
		{1 << 20, 10000},
	} {
		if got := CPUSharesToWeight(c.shares); got != c.want {
			t.Errorf("CPUSharesToWeight(%d) = %d, want %d", c.shares, got, c.want)
		}
	}
	// Monotonic and in range over the whole v1 domain.
	prev := uint64(0)
	for s := uint64(2); s <= 262144; s++ {
		w := CPUSharesToWeight(s)
		if w < prev || w < 1 || w > 10000 {
			t.Fatalf("CPUSharesToWeight(%d) = %d after %d: not monotonic or out of [1, 10000]", s, w, prev)
		}
		prev = w
	}
	// Half and double the default land on either side of it.
	if w := CPUSharesToWeight(512); w >= 100 || w < 30 {
		t.Errorf("CPUSharesToWeight(512) = %d, want in [30, 100)", w)
	}
	if w := CPUSharesToWeight(2048); w <= 100 || w > 300 {
		t.Errorf("CPUSharesToWeight(2048) = %d, want in (100, 300]", w)
	}
}

func TestBlkioWeightToIOWeight(t *testing.T) {
	for _, c := range []struct{ in, want uint64 }{
		{0, 0},
		{10, 1},
		{1000, 10000},
		{500, 4950},
		{100, 910},
	} {
		if got := BlkioWeightToIOWeight(c.in); got != c.want {
			t.Errorf("BlkioWeightToIOWeight(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestSwapToV2(t *testing.T) {
	for _, c := range []struct {
		swap, memory, want int64
		invalid            bool
	}{
		{swap: 0, memory: -1, want: -1},
		{swap: -1, memory: 100, want: -1},
		{swap: 0, memory: 100, want: 0},
		{swap: 300, memory: 100, want: 200},
		{swap: 100, memory: 100, want: 0},
		{swap: 50, memory: 100, invalid: true},
		{swap: 300, memory: 0, invalid: true},
		{swap: 300, memory: -1, invalid: true},
		{swap: 300, memory: -5, invalid: true},
	} {
		got, err := SwapToV2(c.swap, c.memory)
		if c.invalid {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("SwapToV2(%d, %d) = %d, %v; want an invalid argument error", c.swap, c.memory, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("SwapToV2(%d, %d) = %d, %v; want %d", c.swap, c.memory, got, err, c.want)
		}
	}
}

func TestPageSizeName(t *testing.T) {
	for kb, want := range map[uint64]string{64: "64KB", 2048: "2MB", 32768: "32MB", 1048576: "1GB", 16777216: "16GB"} {
		if got := pageSizeName(kb); got != want {
			t.Errorf("pageSizeName(%d) = %q, want %q", kb, got, want)
		}
	}
}

func TestLimitString(t *testing.T) {
	for v, want := range map[int64]string{-1: "max", -2: "max", 0: "0", 4096: "4096"} {
		if got := limitString(v); got != want {
			t.Errorf("limitString(%d) = %q, want %q", v, got, want)
		}
	}
}
