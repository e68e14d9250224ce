package commands

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// GenManTree writes one roff man page (section 1) per command of root
// into dir: berth.1, berth-run.1, berth-container-ls.1 ...
func GenManTree(root *cobra.Command, dir string, date time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var err error
	walk(root, func(c *cobra.Command) {
		if err != nil || c.Hidden || c.Name() == "help" {
			return
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		err = os.WriteFile(filepath.Join(dir, name), ManPage(c, date), 0o644)
	})
	return err
}

// ManPage renders one command's man page.
func ManPage(c *cobra.Command, date time.Time) []byte {
	var b bytes.Buffer
	title := strings.ToUpper(strings.ReplaceAll(c.CommandPath(), " ", "-"))
	fmt.Fprintf(&b, ".TH %q 1 %q \"berth\" \"berth manual\"\n", title, date.Format("Jan 2006"))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", roff(strings.ReplaceAll(c.CommandPath(), " ", "-")), roff(c.Short))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n\\fB%s\\fP\n", roff(c.UseLine()))
	desc := c.Long
	if desc == "" {
		desc = c.Short
	}
	fmt.Fprintf(&b, ".SH DESCRIPTION\n%s\n", roff(desc))
	if len(c.Aliases) > 0 {
		parent := ""
		if c.HasParent() {
			parent = c.Parent().CommandPath() + " "
		}
		var as []string
		for _, a := range c.Aliases {
			as = append(as, parent+a)
		}
		fmt.Fprintf(&b, ".SH ALIASES\n%s\n", roff(strings.Join(as, ", ")))
	}
	writeFlags := func(header string, fs *pflag.FlagSet) {
		var flags []*pflag.Flag
		fs.VisitAll(func(f *pflag.Flag) {
			if !f.Hidden && f.Deprecated == "" {
				flags = append(flags, f)
			}
		})
		if len(flags) == 0 {
			return
		}
		sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
		fmt.Fprintf(&b, ".SH %s\n", header)
		for _, f := range flags {
			b.WriteString(".TP\n")
			if f.Shorthand != "" {
				fmt.Fprintf(&b, "\\fB\\-%s\\fP, ", f.Shorthand)
			}
			fmt.Fprintf(&b, "\\fB\\-\\-%s\\fP", roff(f.Name))
			if t := f.Value.Type(); t != "bool" {
				fmt.Fprintf(&b, " \\fI%s\\fP", roff(t))
			}
			b.WriteString("\n")
			usage := f.Usage
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && f.DefValue != "0" {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
			// Keep the line breaks of multi-line help (--format's).
			fmt.Fprintf(&b, "%s\n", strings.ReplaceAll(roff(usage), "\n", "\n.br\n"))
		}
	}
	writeFlags("OPTIONS", c.NonInheritedFlags())
	writeFlags("GLOBAL OPTIONS", c.InheritedFlags())
	var subs []string
	for _, s := range c.Commands() {
		if !s.Hidden && s.Name() != "help" {
			subs = append(subs, fmt.Sprintf("\\fB%s\\fP(1)", roff(strings.ReplaceAll(s.CommandPath(), " ", "-"))))
		}
	}
	if c.HasParent() {
		subs = append([]string{fmt.Sprintf("\\fB%s\\fP(1)", roff(strings.ReplaceAll(c.Parent().CommandPath(), " ", "-")))}, subs...)
	}
	if len(subs) > 0 {
		fmt.Fprintf(&b, ".SH SEE ALSO\n%s\n", strings.Join(subs, ", "))
	}
	return b.Bytes()
}

// roff escapes text for a man page: backslashes, and leading dots or
// quotes that roff would read as requests.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
