package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/klauspost/compress/gzip"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	"github.com/moby/patternmatcher"
)

// BuildOptions are the options of berth build.
type BuildOptions struct {
	Context    string // a directory, a URL, or "-" for stdin
	Dockerfile string // -f: relative to the working directory; "-" reads stdin
	Tags       []string
	BuildArgs  []string // KEY=VALUE, or KEY to take the value from the environment
	Labels     []string // KEY=VALUE
	Target     string
	Network    string
	NoCache    bool
	Pull       bool
	Quiet      bool
	Compress   bool
	IIDFile    string
	Rm         bool
	ForceRm    bool
}

// isRemoteContext says whether a build context names a URL rather than a
// path: docker's schemes and git's short forms.
func isRemoteContext(s string) bool {
	for _, p := range []string{"http://", "https://", "git://", "git@", "github.com/"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Build sends a build context to berthd and prints the build's progress
// as docker's classic builder does; -q prints only the image ID.
func (c *CLI) Build(ctx context.Context, o BuildOptions) error {
	opts, err := buildAPIOptions(o)
	if err != nil {
		return err
	}
	if o.IIDFile != "" {
		if err := os.Remove(o.IIDFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing image ID file: %w", err)
		}
	}
	var body io.Reader
	switch {
	case o.Context == "-":
		if o.Dockerfile == "-" {
			return errors.New("invalid argument: can't use stdin for both build context and dockerfile")
		}
		r, isTar, err := stdinContext(c.In)
		if err != nil {
			return err
		}
		if !isTar && o.Dockerfile != "" {
			return errors.New("the Dockerfile is read from stdin: -f/--file cannot name another")
		}
		body = r
	case isRemoteContext(o.Context):
		opts.RemoteContext = o.Context
	default:
		cd, err := localContext(o.Context, o.Dockerfile, c.In)
		if err != nil {
			return err
		}
		pm, err := cd.matcher()
		if err != nil {
			return err
		}
		opts.Dockerfile = cd.name()
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeContext(cd, pm, pw, o.Compress)) }()
		defer pr.Close()
		body = pr
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	resp, err := cl.ImageBuild(ctx, body, opts)
	if err != nil {
		return c.daemonError(err)
	}
	defer resp.Body.Close()

	var out io.Writer = c.Out
	var quietBuf bytes.Buffer
	if o.Quiet {
		out = &quietBuf
	}
	var imageID string
	aux := func(m jsonstream.Message) {
		var id struct{ ID string }
		if m.Aux != nil && json.Unmarshal(*m.Aux, &id) == nil && id.ID != "" {
			imageID = id.ID
		}
	}
	err = jsonmessage.DisplayJSONMessagesStream(resp.Body, out, c.Out.FD(), c.Out.IsTerminal() && !o.Quiet, aux)
	if err != nil {
		if o.Quiet {
			fmt.Fprint(c.Err, quietBuf.String())
		}
		var jerr *jsonstream.Error
		if errors.As(err, &jerr) {
			code := jerr.Code
			if code == 0 || code > 255 {
				code = 1
			}
			return &StatusError{Status: jerr.Message, StatusCode: code}
		}
		return c.daemonError(err)
	}
	if o.Quiet {
		fmt.Fprint(c.Out, quietBuf.String())
	}
	if o.IIDFile != "" {
		if imageID == "" {
			return fmt.Errorf("server did not provide an image ID; cannot write %s", o.IIDFile)
		}
		if err := os.WriteFile(o.IIDFile, []byte(imageID), 0o666); err != nil {
			return fmt.Errorf("write image ID file: %w", err)
		}
	}
	return nil
}

// writeContext writes cd's tar of what pm leaves in to w, gzip-compressed
// if asked.
func writeContext(cd *contextDir, pm *patternmatcher.PatternMatcher, w io.Writer, compress bool) error {
	if !compress {
		return cd.writeTar(w, pm)
	}
	zw := gzip.NewWriter(w)
	if err := cd.writeTar(zw, pm); err != nil {
		return err
	}
	return zw.Close()
}

// buildAPIOptions turns the flags into the API's build options, checking
// tags, build args and labels first.
func buildAPIOptions(o BuildOptions) (client.ImageBuildOptions, error) {
	opts := client.ImageBuildOptions{
		Dockerfile:  o.Dockerfile,
		Target:      o.Target,
		NoCache:     o.NoCache,
		PullParent:  o.Pull,
		NetworkMode: o.Network,
		Remove:      o.Rm,
		ForceRemove: o.ForceRm,

		SuppressOutput: o.Quiet,
		Version:        "1",
	}
	for _, t := range o.Tags {
		if _, err := reference.ParseNormalizedNamed(t); err != nil {
			return opts, fmt.Errorf("invalid argument %q for \"-t, --tag\" flag: %v", t, err)
		}
		opts.Tags = append(opts.Tags, t)
	}
	if len(o.BuildArgs) > 0 {
		opts.BuildArgs = map[string]*string{}
		for _, a := range o.BuildArgs {
			k, v, ok := strings.Cut(a, "=")
			if k == "" {
				return opts, fmt.Errorf("invalid argument %q for \"--build-arg\" flag: variable name is missing", a)
			}
			if !ok {
				env, set := os.LookupEnv(k)
				if !set {
					opts.BuildArgs[k] = nil
					continue
				}
				v = env
			}
			opts.BuildArgs[k] = &v
		}
	}
	if len(o.Labels) > 0 {
		opts.Labels = map[string]string{}
		for _, l := range o.Labels {
			k, v, _ := strings.Cut(l, "=")
			if k == "" {
				return opts, fmt.Errorf("invalid argument %q for \"--label\" flag: label name is missing", l)
			}
			opts.Labels[k] = v
		}
	}
	return opts, nil
}

// BuilderPruneOptions are the options of berth builder prune.
type BuilderPruneOptions struct {
	Force bool
}

// BuilderPrune removes the build cache, after confirmation unless forced,
// and prints what it reclaimed.
func (c *CLI) BuilderPrune(ctx context.Context, o BuilderPruneOptions) error {
	if !o.Force && !c.confirm(ctx, "WARNING! This will remove all dangling build cache.") {
		return nil
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.BuildCachePrune(ctx, client.BuildCachePruneOptions{})
	if err != nil {
		return c.daemonError(err)
	}
	if len(res.Report.CachesDeleted) > 0 {
		fmt.Fprintln(c.Out, "Deleted build cache objects:")
		for _, id := range res.Report.CachesDeleted {
			fmt.Fprintln(c.Out, id)
		}
		fmt.Fprintln(c.Out)
	}
	fmt.Fprintf(c.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
	return nil
}
