package commands

import (
	"bufio"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var update = flag.Bool("update", false, "rewrite testdata/commands.txt from the command tree")

// commandTree lists every command of root with its aliases and flags, one
// line per command: "container ls [ps list]: --all/-a --filter/-f ...".
func commandTree(root *cobra.Command) map[string]string {
	tree := map[string]string{}
	walk(root, func(c *cobra.Command) {
		if c.Name() == "help" {
			return
		}
		path := strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
		if c == root {
			path = "(global)"
		}
		var flags []string
		c.NonInheritedFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			s := "--" + f.Name
			if f.Shorthand != "" {
				s += "/-" + f.Shorthand
			}
			if f.Hidden || f.Deprecated != "" {
				s += "(hidden)"
			}
			flags = append(flags, s)
		})
		sort.Strings(flags)
		line := strings.Join(flags, " ")
		if len(c.Aliases) > 0 {
			aliases := append([]string(nil), c.Aliases...)
			sort.Strings(aliases)
			line = "[" + strings.Join(aliases, " ") + "] " + line
		}
		tree[path] = strings.TrimSpace(line)
	})
	return tree
}

func formatTree(tree map[string]string) string {
	var keys []string
	for k := range tree {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(strings.TrimSpace(k + ": " + tree[k]))
		b.WriteString("\n")
	}
	return b.String()
}

// TestCommandTreeGolden keeps testdata/commands.txt, the list of every
// command and flag, in step with the code: a change to the tree shows in
// review as a change to that file (go test -run Golden -update).
func TestCommandTreeGolden(t *testing.T) {
	got := formatTree(commandTree(NewRootCommand("test")))
	golden := filepath.Join("testdata", "commands.txt")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("command tree differs from %s (run with -update if intended):\n%s", golden, lineDiff(string(want), got))
	}
}

func lineDiff(want, got string) string {
	w := map[string]bool{}
	for _, l := range strings.Split(want, "\n") {
		w[l] = true
	}
	g := map[string]bool{}
	for _, l := range strings.Split(got, "\n") {
		g[l] = true
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// readLines reads "key: value" lines, skipping blanks and # comments.
func readLines(t *testing.T, path string) [][2]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		out = append(out, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	return out
}

// TestDockerCoverage checks berth against the docker CLI's commands and
// flags (testdata/docker-flags.txt, from docker 28's --help): each one is
// present in berth or listed in testdata/absent.txt with the reason.
func TestDockerCoverage(t *testing.T) {
	tree := commandTree(NewRootCommand("test"))
	has := map[string]map[string]bool{}
	for path, line := range tree {
		flags := map[string]bool{}
		for _, f := range strings.Fields(line) {
			name, _, _ := strings.Cut(strings.TrimSuffix(f, "(hidden)"), "/")
			flags[name] = true
		}
		has[path] = flags
		if i := strings.Index(line, "]"); strings.HasPrefix(line, "[") && i > 0 {
			parent := ""
			if j := strings.LastIndex(path, " "); j >= 0 {
				parent = path[:j+1]
			}
			for _, a := range strings.Fields(line[1:i]) {
				has[parent+a] = flags
			}
		}
	}
	absent := map[string]string{}
	for _, kv := range readLines(t, filepath.Join("testdata", "absent.txt")) {
		if kv[1] == "" {
			t.Errorf("absent.txt: %q has no reason", kv[0])
		}
		absent[kv[0]] = kv[1]
	}
	used := map[string]bool{}
	for _, kv := range readLines(t, filepath.Join("testdata", "docker-flags.txt")) {
		path, flags := kv[0], strings.Fields(kv[1])
		bflags, ok := has[path]
		if !ok {
			if _, listed := absent[path]; listed {
				used[path] = true
			} else {
				t.Errorf("docker %s: no berth command and not listed as absent", path)
			}
			continue
		}
		for _, f := range flags {
			if bflags[f] || f == "--help" {
				continue
			}
			key := path + " " + f
			if _, listed := absent[key]; listed {
				used[key] = true
				continue
			}
			if _, listed := absent["* "+f]; listed {
				used["* "+f] = true
				continue
			}
			t.Errorf("docker %s %s: missing from berth and not listed as absent", path, f)
		}
	}
	for k := range absent {
		if !used[k] {
			t.Errorf("absent.txt lists %q, which berth has or docker lacks", k)
		}
	}
}
