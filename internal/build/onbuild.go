package build

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/berth-project/berth/internal/errdefs"
)

// runTriggers runs the ONBUILD triggers of the image stage st starts from,
// before the stage's own instructions, as Docker's classic builder does:
// it says how many there are, runs each as an instruction of the stage
// (without a step line or an image ID of its own) and then prints the ID
// of the image they made. The stage's images have no triggers: Docker
// does not pass them on to grandchildren.
func (bd *build) runTriggers(ctx context.Context, st *stageState) error {
	triggers := st.conf.OnBuild
	if len(triggers) == 0 {
		return nil
	}
	st.conf.OnBuild = nil
	plural := ""
	if len(triggers) > 1 {
		plural = "s"
	}
	fmt.Fprintf(bd.opts.Out, "# Executing %d build trigger%s\n", len(triggers), plural)
	st.triggers = true
	defer func() { st.triggers = false }()
	for _, trigger := range triggers {
		if err := ctx.Err(); err != nil {
			return err
		}
		cmd, err := parseTrigger(trigger)
		if err != nil {
			return fmt.Errorf("build trigger %q: %w", trigger, err)
		}
		if err := bd.dispatch(ctx, st, cmd); err != nil {
			if ee := (*ExitError)(nil); errors.As(err, &ee) {
				return ee // Docker's message, as it is
			}
			if !classified(err) {
				err = fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
			}
			return fmt.Errorf("build trigger %q: %w", trigger, err)
		}
	}
	bd.printID(st.imageID)
	return nil
}

// parseTrigger parses one ONBUILD trigger as a Dockerfile instruction.
// ONBUILD, FROM and MAINTAINER are refused, with Docker's messages: the
// ONBUILD instruction refuses them too, but an image made elsewhere may
// carry them.
func parseTrigger(trigger string) (instructions.Command, error) {
	fail := func(err error) (instructions.Command, error) {
		return nil, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	res, err := parser.Parse(strings.NewReader(trigger))
	if err != nil {
		return fail(err)
	}
	if len(res.AST.Children) != 1 {
		return fail(errors.New("onbuild trigger should be a single expression"))
	}
	node := res.AST.Children[0]
	switch name := strings.ToUpper(node.Value); name {
	case "ONBUILD":
		//lint:ignore ST1005 Docker's wording
		return fail(errors.New("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"))
	case "FROM", "MAINTAINER":
		return fail(fmt.Errorf("%s isn't allowed as an ONBUILD trigger", name))
	}
	cmd, err := instructions.ParseCommand(node)
	if err != nil {
		return fail(err)
	}
	return cmd, nil
}
