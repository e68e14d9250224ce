package snapshot

import (
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindView: "view", KindActive: "active", KindCommitted: "committed", KindUnknown: "unknown", 42: "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func TestValidateKey(t *testing.T) {
	for _, key := range []string{"a", "sha256:0123", "default/12/sha256:ab", "ключ", strings.Repeat("k", MaxKeyLen)} {
		if err := ValidateKey(key); err != nil {
			t.Errorf("ValidateKey(%.20q): %v", key, err)
		}
	}
	for _, key := range []string{"", "a\x00", "a\nb", "\x7f", "\xff", strings.Repeat("k", MaxKeyLen+1)} {
		if err := ValidateKey(key); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ValidateKey(%.20q): %v, want invalid argument", key, err)
		}
	}
}

func TestWithLabelsCopies(t *testing.T) {
	labels := map[string]string{"a": "1"}
	var info Info
	WithLabels(labels)(&info)
	labels["a"] = "2"
	if info.Labels["a"] != "1" {
		t.Errorf("WithLabels kept the caller's map: %v", info.Labels)
	}
}

func TestUpperDir(t *testing.T) {
	overlay := Mount{Type: "overlay", Source: "overlay", Options: []string{"index=off", "workdir=/s/3/work", "upperdir=/s/3/fs", "lowerdir=/s/2/fs:/s/1/fs"}}
	upper, lowers, err := UpperDir([]Mount{overlay})
	if err != nil || upper != "/s/3/fs" || strings.Join(lowers, " ") != "/s/2/fs /s/1/fs" {
		t.Errorf("overlay: %q %v %v", upper, lowers, err)
	}
	upper, lowers, err = UpperDir([]Mount{{Type: "bind", Source: "/s/1/fs", Options: []string{"rbind", "rw"}}})
	if err != nil || upper != "/s/1/fs" || lowers != nil {
		t.Errorf("bind: %q %v %v", upper, lowers, err)
	}
	for name, mounts := range map[string][]Mount{
		"none":          nil,
		"two":           {overlay, overlay},
		"read-only":     {{Type: "bind", Source: "/s/1/fs", Options: []string{"rbind", "ro"}}},
		"no upperdir":   {{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/a:/b"}}},
		"unknown type":  {{Type: "tmpfs", Source: "tmpfs"}},
		"bind, no path": {{Type: "bind"}},
	} {
		if _, _, err := UpperDir(mounts); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
}
