package network

import (
	"context"
	"testing"

	"github.com/moby/moby/api/types/network"
)

// BenchmarkSetupTeardown measures a container's network setup and
// teardown, the part of container start and stop the manager owns.
func BenchmarkSetupTeardown(b *testing.B) {
	e := newEnv(b)
	e.createNetwork("bench", network.CreateRequest{})
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		req  SandboxRequest
	}{
		{"none", SandboxRequest{NetworkMode: "none"}},
		{"bridge", SandboxRequest{}},
		{"bridge+port", SandboxRequest{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{}}}}},
		{"user+dns", SandboxRequest{NetworkMode: "bench"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			for b.Loop() {
				req := bc.req
				req.Dir = dir
				_, id, err := e.trySetup("c", req)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.m.Teardown(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
