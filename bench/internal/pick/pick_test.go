package pick

import (
	"reflect"
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	all := []string{"a", "b", "c"}
	id := func(s string) string { return s }
	for _, tc := range []struct {
		list string
		want []string
	}{{"", all}, {"all", all}, {"c, a", []string{"c", "a"}}} {
		got, err := Select(all, id, tc.list)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Select(%q) = %v, %v; want %v", tc.list, got, err, tc.want)
		}
	}
	if _, err := Select(all, id, "a,x"); err == nil || !strings.Contains(err.Error(), `unknown scenario "x" (have a,b,c)`) {
		t.Errorf("unknown name: %v", err)
	}
}
