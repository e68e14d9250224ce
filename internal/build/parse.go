package build

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/berth-project/berth/internal/errdefs"
)

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
	lines    []string // the source, for error messages
}

// parse parses a Dockerfile's text into stages. A syntax error names the
// line and its text and is of class errdefs.ErrInvalidArgument.
func parse(data []byte) (*dockerfile, error) {
	lines := strings.Split(string(data), "\n")
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, syntaxError(err, lines)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, syntaxError(err, lines)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("dockerfile parse error: file with no instructions: %w", errdefs.ErrInvalidArgument)
	}
	return &dockerfile{stages: stages, metaArgs: metaArgs, escape: res.EscapeToken, lines: lines}, nil
}

// syntaxError classifies a parser error and makes sure it names the line
// and shows the instruction's text.
func syntaxError(err error, lines []string) error {
	line := 0
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		line = le.Locations[0][0].Start.Line
	}
	msg := err.Error()
	if line <= 0 || line > len(lines) {
		return fmt.Errorf("dockerfile parse error: %s: %w", msg, errdefs.ErrInvalidArgument)
	}
	if !strings.Contains(msg, fmt.Sprintf("line %d", line)) {
		msg = fmt.Sprintf("dockerfile parse error on line %d: %s", line, msg)
	}
	text := strings.TrimSpace(lines[line-1])
	return fmt.Errorf("%s (instruction %q): %w", msg, text, errdefs.ErrInvalidArgument)
}

// stepError wraps an error of one step with the step's line and text,
// keeping its class (ErrInvalidArgument when it has none).
func stepError(cmd instructions.Command, err error) error {
	line := 0
	if loc := cmd.Location(); len(loc) > 0 {
		line = loc[0].Start.Line
	}
	if !classified(err) {
		err = fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("dockerfile line %d: %s: %w", line, commandText(cmd), err)
}

// commandText is the instruction as written (its first line).
func commandText(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return s.String()
	}
	return cmd.Name()
}

// envGetter is the environment variables are expanded from: the stage's
// ENV values, then its ARG values.
type envGetter struct {
	env  []string
	args map[string]string
}

func (e envGetter) Get(name string) (string, bool) {
	for i := len(e.env) - 1; i >= 0; i-- {
		k, v, _ := strings.Cut(e.env[i], "=")
		if k == name {
			return v, true
		}
	}
	v, ok := e.args[name]
	return v, ok
}

func (e envGetter) Keys() []string {
	var keys []string
	for _, kv := range e.env {
		k, _, _ := strings.Cut(kv, "=")
		keys = append(keys, k)
	}
	for k := range e.args {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// classified reports whether err carries one of errdefs' classes.
func classified(err error) bool {
	for _, c := range []error{errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrConflict, errdefs.ErrInvalidArgument,
		errdefs.ErrNotImplemented, errdefs.ErrUnavailable, errdefs.ErrPermission, errdefs.ErrUnauthorized, errdefs.ErrDataLoss} {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}
