package docker

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/image"
)

// TestImageInspectLegacyFields: Container and ContainerConfig (empty)
// before API 1.45, VirtualSize before 1.44, neither after.
func TestImageInspectLegacyFields(t *testing.T) {
	d := image.Details{
		Summary:   image.Summary{ID: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Size: 1234},
		Config:    ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		RawConfig: []byte(`{"config":{"Cmd":["sh"]}}`),
	}
	for _, tc := range []struct {
		version            string
		container, virtual bool
	}{{"1.43", true, true}, {"1.44", true, false}, {"1.45", false, false}, {"1.52", false, false}} {
		out, err := toImageInspect(d, "overlay2", nil, tc.version)
		if err != nil {
			t.Fatal(err)
		}
		m := jsonMap(t, out)
		cc, hasCC := m["ContainerConfig"].(map[string]any)
		_, hasContainer := m["Container"]
		if hasCC != tc.container || hasContainer != tc.container {
			t.Errorf("%s: Container %v, ContainerConfig %v; want both %v", tc.version, hasContainer, hasCC, tc.container)
		}
		if hasCC && (cc["Cmd"] != nil || cc["Hostname"] != "") {
			t.Errorf("%s: ContainerConfig %v, want an empty config", tc.version, cc)
		}
		if vs, ok := m["VirtualSize"]; ok != tc.virtual || ok && vs != 1234.0 {
			t.Errorf("%s: VirtualSize %v (present %v), want present %v", tc.version, vs, ok, tc.virtual)
		}
		if c := m["Config"].(map[string]any); c["Cmd"] == nil {
			t.Errorf("%s: Config %v lost its Cmd", tc.version, c)
		}
	}
}
