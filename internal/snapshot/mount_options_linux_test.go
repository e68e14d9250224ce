package snapshot

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	flags, data := parseOptions([]string{"ro", "nosuid", "index=off", "rw", "rbind", "lowerdir=/a:/b"})
	if flags != unix.MS_NOSUID|unix.MS_BIND|unix.MS_REC || data != "index=off,lowerdir=/a:/b" {
		t.Errorf("parseOptions: flags %#x data %q", flags, data)
	}
}

func TestCommonDir(t *testing.T) {
	for _, c := range []struct {
		paths []string
		want  string
	}{
		{[]string{"/s/1/fs", "/s/2/fs", "/s/10/work"}, "/s"},
		{[]string{"/s/1/fs"}, "/s/1"},
		{[]string{"/a/x", "/b/y"}, "/"},
		{[]string{"rel/1", "rel/2"}, ""},
		{nil, ""},
	} {
		if got := commonDir(c.paths); got != c.want {
			t.Errorf("commonDir(%v) = %q, want %q", c.paths, got, c.want)
		}
	}
}
