// Package timing summarises the wall times the benches measure.
package timing

import (
	"slices"
	"time"
)

// Median returns the median of d (the mean of the two middle values for an
// even count), or 0 for none. d is not reordered.
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(d))
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return (s[mid-1] + s[mid]) / 2
}

// Percentile returns the p-th percentile of d by the nearest-rank method,
// or 0 for none. d is not reordered.
func Percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(d))
	rank := max((p*len(s)+99)/100, 1) // ceil(p/100 * n)
	return s[min(rank, len(s))-1]
}
