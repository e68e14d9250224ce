package daemon

import "testing"

func TestNamesUserOrGroup(t *testing.T) {
	for _, tc := range []struct {
		user     string
		groupAdd []string
		want     bool
	}{
		{"", nil, false},
		{"0", nil, false},
		{"1000:1000", []string{"27"}, false},
		{":5", nil, false},
		{"nobody", nil, true},
		{"1000:staff", nil, true},
		{"", []string{"10", "audio"}, true},
	} {
		if got := namesUserOrGroup(tc.user, tc.groupAdd); got != tc.want {
			t.Errorf("namesUserOrGroup(%q, %q) = %v, want %v", tc.user, tc.groupAdd, got, tc.want)
		}
	}
}
