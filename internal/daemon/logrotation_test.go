package daemon

import (
	"testing"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestLogRotation(t *testing.T) {
	for _, tc := range []struct {
		typ      string
		opts     map[string]string
		size     int64
		files    int
		badInput bool
	}{
		{typ: "json-file", size: 20 << 20, files: 5},
		{typ: "local", size: 20 << 20, files: 5},
		{typ: "json-file", opts: map[string]string{"max-size": "1m"}, size: 1 << 20, files: 1},
		{typ: "json-file", opts: map[string]string{"max-size": "10k", "max-file": "3"}, size: 10 << 10, files: 3},
		{typ: "local", opts: map[string]string{"max-file": "2"}, size: 20 << 20, files: 2},
		{typ: "json-file", opts: map[string]string{"max-file": "3"}, badInput: true},
		{typ: "json-file", opts: map[string]string{"max-size": "lots"}, badInput: true},
		{typ: "json-file", opts: map[string]string{"max-file": "0", "max-size": "1m"}, badInput: true},
		{typ: "json-file", opts: map[string]string{"colour": "blue"}, badInput: true},
	} {
		size, files, err := logRotation(api.LogConfig{Type: tc.typ, Config: tc.opts})
		if tc.badInput {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("%s %v: got %v, want invalid argument", tc.typ, tc.opts, err)
			}
			continue
		}
		if err != nil || size != tc.size || files != tc.files {
			t.Errorf("%s %v: got %d, %d, %v; want %d, %d", tc.typ, tc.opts, size, files, err, tc.size, tc.files)
		}
	}
}
