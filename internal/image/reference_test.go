package image

import (
	"testing"

	"github.com/distribution/reference"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestParseReference(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                            "docker.io/library/busybox:latest",
		"busybox:1.36":                       "docker.io/library/busybox:1.36",
		"library/busybox":                    "docker.io/library/busybox:latest",
		"docker.io/busybox":                  "docker.io/library/busybox:latest",
		"index.docker.io/library/busybox":    "docker.io/library/busybox:latest",
		"user/app:v1":                        "docker.io/user/app:v1",
		"localhost:5000/app":                 "localhost:5000/app:latest",
		"127.0.0.1:5000/a/b/c:t":             "127.0.0.1:5000/a/b/c:t",
		"localhost/app":                      "localhost/app:latest",
		"ghcr.io/o/app@sha256:" + hex64("1"): "ghcr.io/o/app@sha256:" + hex64("1"),
	} {
		ref, err := ParseReference(in)
		if err != nil {
			t.Errorf("ParseReference(%q): %v", in, err)
			continue
		}
		if ref.String() != want {
			t.Errorf("ParseReference(%q) = %s, want %s", in, ref, want)
		}
	}
	for _, bad := range []string{"", "Busybox", "busybox:", "a b", "busybox@sha256:12", ":tag", "busybox:" + string(make([]byte, 200))} {
		if _, err := ParseReference(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseReference(%q) = %v, want invalid argument", bad, err)
		}
	}
	ref, _ := ParseReference("busybox")
	if FamiliarString(ref) != "busybox:latest" || Domain(ref) != "docker.io" {
		t.Errorf("familiar %s domain %s", FamiliarString(ref), Domain(ref))
	}
	if TaggedString(ref.(reference.NamedTagged)) != "docker.io/library/busybox:latest" {
		t.Errorf("tagged %s", TaggedString(ref.(reference.NamedTagged)))
	}
	if _, err := ParseRepository("busybox:1"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("ParseRepository with a tag: %v", err)
	}
}

func TestLooksLikeID(t *testing.T) {
	for s, want := range map[string]bool{"abcd": true, "sha256:" + hex64("a"): true, hex64("0"): true, "abc": false, "busybox": false, "ABCD": false, hex64("a") + "0": false} {
		if LooksLikeID(s) != want {
			t.Errorf("LooksLikeID(%q) = %v", s, !want)
		}
	}
}

func hex64(c string) string {
	s := ""
	for len(s) < 64 {
		s += c
	}
	return s
}
