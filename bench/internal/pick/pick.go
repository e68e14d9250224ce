// Package pick selects a benchmark's scenarios by name from its -scenario
// flag, the same way in every bench program.
package pick

import (
	"fmt"
	"strings"
)

// Names joins the names of all, for the flag's help.
func Names[S any](all []S, name func(S) string) string {
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = name(s)
	}
	return strings.Join(names, ",")
}

// Select returns the scenarios of all named in list (comma-separated), in
// list's order; "" or "all" selects all. An unknown name is an error that
// lists the known ones.
func Select[S any](all []S, name func(S) string, list string) ([]S, error) {
	if list == "" || list == "all" {
		return all, nil
	}
	var out []S
	for _, want := range strings.Split(list, ",") {
		want = strings.TrimSpace(want)
		found := false
		for _, s := range all {
			if name(s) == want {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", want, Names(all, name))
		}
	}
	return out, nil
}
