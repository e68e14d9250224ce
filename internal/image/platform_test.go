package image

import (
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]string{
		"linux/amd64":        "linux/amd64",
		"linux/x86_64":       "linux/amd64",
		"Linux/AMD64":        "linux/amd64",
		"linux/aarch64":      "linux/arm64/v8",
		"linux/arm64":        "linux/arm64/v8",
		"linux/arm":          "linux/arm/v7",
		"linux/arm/v6":       "linux/arm/v6",
		"linux/armhf":        "linux/arm/v7",
		"linux/386":          "linux/386",
		"linux/s390x":        "linux/s390x",
		"windows/amd64":      "windows/amd64",
		"linux/riscv64/rva2": "linux/riscv64/rva2",
	} {
		p, err := ParsePlatform(in)
		if err != nil {
			t.Errorf("ParsePlatform(%q): %v", in, err)
			continue
		}
		if got := FormatPlatform(p); got != want {
			t.Errorf("ParsePlatform(%q) = %s, want %s", in, got, want)
		}
	}
	if p, _ := ParsePlatform(""); p.Architecture != runtime.GOARCH || p.OS != runtime.GOOS {
		t.Errorf("empty platform is %s, want the host", FormatPlatform(p))
	}
	for _, bad := range []string{"/", "linux/amd64/v1/x", "linux/", "linux/am d64"} {
		if _, err := ParsePlatform(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParsePlatform(%q) = %v, want invalid argument", bad, err)
		}
	}
}

func TestSelectManifest(t *testing.T) {
	desc := func(d, plat string) ocispec.Descriptor {
		p, err := ParsePlatform(plat)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(plat, "arm64") {
			p.Variant = "" // as many indexes write it
		}
		return ocispec.Descriptor{Digest: digest.Digest("sha256:" + strings.Repeat(d, 64)), Platform: &p}
	}
	list := []ocispec.Descriptor{
		desc("a", "linux/arm/v6"), desc("b", "linux/arm/v7"), desc("c", "linux/arm64"),
		desc("d", "linux/amd64"), desc("e", "windows/amd64"),
		{Digest: digest.Digest("sha256:" + strings.Repeat("f", 64)), Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"}},
	}
	for plat, want := range map[string]string{"linux/amd64": "d", "linux/arm64": "c", "linux/arm/v7": "b", "linux/arm/v6": "a", "windows/amd64": "e"} {
		p, _ := ParsePlatform(plat)
		got, err := SelectManifest(list, p)
		if err != nil {
			t.Errorf("%s: %v", plat, err)
			continue
		}
		if got.Digest.Encoded()[:1] != want {
			t.Errorf("%s selected %s, want %s", plat, got.Digest, want)
		}
	}
	// An arm/v8 host runs v7 images when no v8 is offered.
	got, err := SelectManifest(list[:2], ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v8"})
	if err != nil || got.Digest.Encoded()[:1] != "b" {
		t.Errorf("arm/v8 selected %v, %v; want the v7 entry", got.Digest, err)
	}
	p, _ := ParsePlatform("linux/ppc64le")
	_, err = SelectManifest(list, p)
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "linux/ppc64le") || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("missing platform: %v", err)
	}
}
