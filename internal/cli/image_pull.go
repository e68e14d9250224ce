package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullOptions are the options of berth pull.
type PullOptions struct {
	Ref      string
	AllTags  bool
	Quiet    bool
	Platform string
}

// Pull downloads an image, showing Docker-style progress, then prints the
// reference it pulled.
func (c *CLI) Pull(ctx context.Context, o PullOptions) error {
	named, err := parseRef(o.Ref)
	if err != nil {
		return err
	}
	if o.AllTags {
		if _, tagged := named.(reference.NamedTagged); tagged {
			return fmt.Errorf("tag can't be used with --all-tags/-a")
		}
	} else {
		named = reference.TagNameOnly(named)
	}
	var platform *ocispec.Platform
	if o.Platform != "" {
		p, err := ParsePlatform(o.Platform)
		if err != nil {
			return err
		}
		platform = &p
	}
	var out io.Writer = c.Out
	if o.Quiet {
		out = io.Discard
	}
	if err := c.pullImage(ctx, named.String(), o.AllTags, platform, out, c.Out.IsTerminal() && !o.Quiet); err != nil {
		return err
	}
	fmt.Fprintln(c.Out, named.String())
	return nil
}

// pullImage pulls ref and renders the daemon's progress stream to out.
func (c *CLI) pullImage(ctx context.Context, ref string, all bool, platform *ocispec.Platform, out io.Writer, tty bool) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	named, err := parseRef(ref)
	if err != nil {
		return err
	}
	auth, err := c.registryAuth(ref)
	if err != nil {
		return err
	}
	po := client.ImagePullOptions{All: all, RegistryAuth: auth, PrivilegeFunc: privilegeFunc(reference.Domain(named))}
	if platform != nil {
		po.Platforms = []ocispec.Platform{*platform}
	}
	resp, err := cl.ImagePull(ctx, ref, po)
	if err != nil {
		return c.daemonError(err)
	}
	defer resp.Close()
	return c.displayProgress(resp, out, tty)
}

// displayProgress renders a JSON progress stream: per-layer bars on a
// terminal, plain lines otherwise. An error message in the stream, or a
// stream cut short, is an error.
func (c *CLI) displayProgress(r io.Reader, out io.Writer, tty bool) error {
	fd := c.Out.FD()
	if out == c.Err {
		fd = c.Err.FD()
		tty = tty && c.Err.IsTerminal()
	}
	return c.daemonError(jsonmessage.DisplayJSONMessagesStream(r, out, fd, tty, nil))
}
