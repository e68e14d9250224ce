package timing

import (
	"testing"
	"time"
)

func TestMedianAndPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	for _, tc := range []struct {
		in          []time.Duration
		median, p90 time.Duration
	}{
		{nil, 0, 0},
		{ms(7), 7 * time.Millisecond, 7 * time.Millisecond},
		{ms(3, 1, 2), 2 * time.Millisecond, 3 * time.Millisecond},
		{ms(4, 1, 3, 2), 2500 * time.Microsecond, 4 * time.Millisecond},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 5500 * time.Microsecond, 9 * time.Millisecond},
		{ms(11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 6 * time.Millisecond, 10 * time.Millisecond},
	} {
		in := append([]time.Duration(nil), tc.in...)
		if got := Median(in); got != tc.median {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.median)
		}
		if got := Percentile(in, 90); got != tc.p90 {
			t.Errorf("Percentile(%v, 90) = %v, want %v", tc.in, got, tc.p90)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Fatalf("median or percentile reordered its input: %v", in)
			}
		}
	}
}
