package oci

import (
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestNormalizeCapsAgainstAvailable(t *testing.T) {
	c := capNames{
		known:     map[string]bool{"CAP_CHOWN": true, "CAP_SYS_ADMIN": true, "CAP_SYS_RESOURCE": true},
		available: []string{"CAP_CHOWN", "CAP_SYS_ADMIN"},
	}
	got, err := c.normalize([]string{"chown", " Sys_Admin ", "all", "CAP_CHOWN"})
	if err != nil || !slices.Equal(got, []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "ALL", "CAP_CHOWN"}) {
		t.Errorf("normalize = %q, %v", got, err)
	}
	for name, want := range map[string]string{
		"sys_resource": `capability not supported by your kernel or not available in the current environment: "CAP_SYS_RESOURCE"`,
		"CAP_NOPE":     `unknown capability: "CAP_NOPE"`,
	} {
		_, err := c.normalize([]string{"CHOWN", name})
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("normalize %s: %v, want invalid argument %s", name, err, want)
		}
	}
}
