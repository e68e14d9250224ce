// Package commands is berth's cobra command tree: each constructor fills
// an options struct from flags and calls package cli, which does the work.
// One file per command group.
package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth-project/berth/internal/cli"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// app holds what every command needs: the global options, the streams,
// and the CLI made from them once flags are parsed.
type app struct {
	global  cli.GlobalOptions
	stdin   io.ReadCloser
	stdout  io.Writer
	stderr  io.Writer
	version string
	cli     *cli.CLI
}

// Main runs berth with args (without the program name) on the process's
// stdio and returns the exit status.
// Signals keep their default action unless a command takes them over
// (run and attach pass them on to the container).
func Main(args []string, version string) int {
	return Run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr, version)
}

// Run runs berth with args on the given streams and returns the exit
// status; errors are printed to stderr with docker's wording.
func Run(ctx context.Context, args []string, stdin io.ReadCloser, stdout, stderr io.Writer, version string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, version: version}
	root := a.newRootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if a.cli != nil {
		a.cli.Close()
	}
	if err == nil {
		return 0
	}
	return a.report(cmd, err)
}

// report prints err the way docker does and returns the exit status.
func (a *app) report(cmd *cobra.Command, err error) int {
	var se *cli.StatusError
	if errors.As(err, &se) {
		if se.Status != "" || se.Cause != nil {
			msg := se.Error()
			if cmd != nil && cmd.Name() == "run" {
				fmt.Fprintf(a.stderr, "berth: %s\n\nRun '%s --help' for more information\n", msg, cmd.CommandPath())
			} else {
				fmt.Fprintln(a.stderr, msg)
			}
		}
		if se.StatusCode == 0 {
			return 1
		}
		return se.StatusCode
	}
	var fe *flagError
	if errors.As(err, &fe) {
		fmt.Fprintf(a.stderr, "%s\n\nUsage:  %s\n\nRun '%s --help' for more information\n", fe.err, fe.cmd.UseLine(), fe.cmd.CommandPath())
		return 125
	}
	var ae *argsError
	if errors.As(err, &ae) {
		verb := "Run"
		if ae.see {
			verb = "See"
		}
		fmt.Fprintf(a.stderr, "berth: %s\n\nUsage:  %s\n\n%s '%s --help' for more information\n", ae.msg, ae.cmd.UseLine(), verb, ae.cmd.CommandPath())
		return 1
	}
	if strings.HasPrefix(err.Error(), "unknown command") {
		if cmd.HasParent() {
			fmt.Fprintf(a.stderr, "berth: %s\n\nUsage:  %s\n\nRun '%s --help' for more information\n", err, cmd.UseLine(), cmd.CommandPath())
		} else {
			fmt.Fprintf(a.stderr, "berth: %s\n\nRun '%s --help' for more information\n", err, cmd.CommandPath())
		}
		return 1
	}
	fmt.Fprintln(a.stderr, err)
	return 1
}

// flagError is a flag parse failure: docker exits 125 for those.
type flagError struct {
	cmd *cobra.Command
	err error
}

func (e *flagError) Error() string { return e.err.Error() }

// argsError is a wrong number of arguments.
type argsError struct {
	cmd *cobra.Command
	msg string
	see bool // too few arguments: docker says "See" rather than "Run"
}

func (e *argsError) Error() string { return e.msg }

func (a *app) newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:              "berth [OPTIONS] COMMAND [ARG...]",
		Short:            "A container engine's command line client, Docker-compatible",
		SilenceUsage:     true,
		SilenceErrors:    true,
		TraverseChildren: true,
		Version:          a.version,
		Args:             noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return a.setup()
		},
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetVersionTemplate("berth version {{.Version}}\n")
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpTemplate("{{.UsageString}}")
	// Global flags come before the command, as with docker: they are the
	// root's own flags, parsed first thanks to TraverseChildren, so that a
	// command may reuse their shorthands (-l, -H...).
	fl := root.Flags()
	fl.StringVarP(&a.global.Host, "host", "H", "", "Daemon socket to connect to (default "+cli.DefaultHost+", or $"+cli.EnvHost+")")
	fl.StringVar(&a.global.ConfigDir, "config", "", "Location of client config files (default ~/.berth, or $"+cli.EnvConfig+")")
	fl.StringVarP(&a.global.LogLevel, "log-level", "l", "info", `Set the logging level ("debug", "info", "warn", "error", "fatal")`)
	fl.BoolVarP(&a.global.Debug, "debug", "D", false, "Enable debug mode")
	fl.BoolP("version", "v", false, "Print version information and quit")

	root.AddCommand(a.containerCommands()...)
	root.AddCommand(a.containerGroup())
	root.AddCommand(a.imageCommands()...)
	root.AddCommand(a.imageGroup())
	root.AddCommand(a.buildCommands()...)
	root.AddCommand(a.systemCommands()...)
	root.AddCommand(a.systemGroup())
	root.AddCommand(a.networkGroup(), a.volumeGroup())
	root.AddCommand(a.completionCommand(root))
	walk(root, func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true
		c.SilenceErrors, c.SilenceUsage = true, true
		c.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &flagError{cmd: c, err: err} })
		if c.HasSubCommands() && c.Args == nil {
			c.Args = subcommandRequired
		}
		a.addNameCompletion(c)
	})
	return root
}

// usageTemplate lays out help as docker's: usage line, description,
// commands, aliases, options.
const usageTemplate = `Usage:  {{if .HasSubCommands}}{{.CommandPath}}{{if .HasParent}} COMMAND{{else}} [OPTIONS] COMMAND{{end}}{{else}}{{.UseLine}}{{end}}

{{with (or .Long .Short)}}{{.}}{{end}}
{{- if gt (len .Aliases) 0}}

Aliases:
  {{.CommandPath}}{{$parent := .Parent.CommandPath}}{{range .Aliases}}, {{$parent}} {{.}}{{end}}
{{- end}}
{{- if .HasAvailableSubCommands}}

Commands:
{{- range .Commands}}{{if .IsAvailableCommand}}
  {{rpad .Name .NamePadding}} {{.Short}}{{end}}{{end}}
{{- end}}
{{- if .HasAvailableLocalFlags}}

{{if .HasParent}}Options{{else}}Global Options{{end}}:
{{.LocalFlags.FlagUsagesWrapped 100 | trimTrailingWhitespaces}}
{{- end}}
{{- if .HasSubCommands}}

Run '{{.CommandPath}} COMMAND --help' for more information on a command.
{{- end}}
`

// setup makes the CLI once the global flags are known.
func (a *app) setup() error {
	if a.cli != nil {
		return nil
	}
	c, err := cli.New(a.stdin, a.stdout, a.stderr, a.global, a.version)
	if err != nil {
		return err
	}
	a.cli = c
	return nil
}

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

// subcommandRequired reports an unknown subcommand of a group.
func subcommandRequired(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return fmt.Errorf("unknown command: %s %s", cmd.CommandPath(), args[0])
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return fmt.Errorf("unknown command: %s %s", cmd.CommandPath(), args[0])
	}
	return &argsError{cmd: cmd, msg: fmt.Sprintf("'%s' accepts no arguments", cmd.CommandPath())}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return &argsError{cmd: cmd, msg: fmt.Sprintf("'%s' requires at least %d %s", cmd.CommandPath(), n, plural(n)), see: true}
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return &argsError{cmd: cmd, msg: fmt.Sprintf("'%s' requires %d %s", cmd.CommandPath(), n, plural(n))}
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && len(args) <= hi {
			return nil
		}
		return &argsError{cmd: cmd, msg: fmt.Sprintf("'%s' requires at least %d and at most %d %s", cmd.CommandPath(), lo, hi, plural(hi))}
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) <= n {
			return nil
		}
		return &argsError{cmd: cmd, msg: fmt.Sprintf("'%s' requires at most %d %s", cmd.CommandPath(), n, plural(n))}
	}
}

func plural(n int) string {
	if n == 1 {
		return "argument"
	}
	return "arguments"
}

// alias makes a copy of a command under another parent (ps and
// container ls share one implementation, as in docker).
func alias(make func() *cobra.Command, use string, aliases ...string) *cobra.Command {
	c := make()
	if use != "" {
		name, rest, _ := strings.Cut(c.Use, " ")
		_ = name
		c.Use = strings.TrimSpace(use + " " + rest)
	}
	c.Aliases = aliases
	return c
}

// stringSlice registers a repeatable string flag; its type shows as
// docker's: "filter" for --filter, "list" otherwise.
func stringSlice(fl *pflag.FlagSet, p *[]string, name, short, usage string) {
	typ := "list"
	if name == "filter" {
		typ = "filter"
	}
	fl.VarP(&listValue{p: p, typ: typ}, name, short, usage)
}

// listValue is a repeatable string flag.
type listValue struct {
	p   *[]string
	typ string
}

func (l *listValue) String() string {
	if l.p == nil || len(*l.p) == 0 {
		return ""
	}
	return "[" + strings.Join(*l.p, " ") + "]"
}

func (l *listValue) Set(v string) error { *l.p = append(*l.p, v); return nil }

func (l *listValue) Type() string { return l.typ }
