package cli

import (
	"context"
	"sort"
	"strings"

	"github.com/moby/moby/client"
)

// Kinds of object Names lists, for shell completion.
const (
	KindContainer        = "container"
	KindRunningContainer = "running"
	KindImage            = "image"
	KindNetwork          = "network"
	KindVolume           = "volume"
)

// Names lists the names of objects of a kind that start with prefix, for
// shell completion. Errors (no daemon) give no names.
func (c *CLI) Names(ctx context.Context, kind, prefix string) []string {
	cl, err := c.Client()
	if err != nil {
		return nil
	}
	var names []string
	switch kind {
	case KindContainer, KindRunningContainer:
		res, err := cl.ContainerList(ctx, client.ContainerListOptions{All: kind == KindContainer})
		if err != nil {
			return nil
		}
		for _, s := range res.Items {
			for _, n := range s.Names {
				if n = strings.TrimPrefix(n, "/"); !strings.Contains(n, "/") {
					names = append(names, n)
				}
			}
		}
	case KindImage:
		res, err := cl.ImageList(ctx, client.ImageListOptions{})
		if err != nil {
			return nil
		}
		for _, img := range res.Items {
			for _, r := range imageRows(img, false, true) {
				if r.Repository() != "<none>" && r.Tag() != "<none>" {
					names = append(names, r.Repository()+":"+r.Tag())
				}
			}
		}
	case KindNetwork:
		res, err := cl.NetworkList(ctx, client.NetworkListOptions{})
		if err != nil {
			return nil
		}
		for _, n := range res.Items {
			names = append(names, n.Name)
		}
	case KindVolume:
		res, err := cl.VolumeList(ctx, client.VolumeListOptions{})
		if err != nil {
			return nil
		}
		for _, v := range res.Items {
			names = append(names, v.Name)
		}
	}
	out := names[:0]
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
