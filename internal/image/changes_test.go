package image

import (
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
)

func applyAll(t *testing.T, start runConfig, changes ...string) runConfig {
	t.Helper()
	parsed, err := parseChanges(changes)
	if err != nil {
		t.Fatalf("parse %q: %v", changes, err)
	}
	if err := applyChanges(&start, parsed); err != nil {
		t.Fatalf("apply %q: %v", changes, err)
	}
	return start
}

func TestChangesForms(t *testing.T) {
	base := runConfig{ImageConfig: ocispec.ImageConfig{Env: []string{"PATH=/bin", "HOME=/root"}, Cmd: []string{"sh"}, WorkingDir: "/srv"}}
	cases := []struct {
		changes []string
		check   func(c runConfig) bool
	}{
		{[]string{`CMD ["echo", "hi there"]`}, func(c runConfig) bool { return reflect.DeepEqual(c.Cmd, []string{"echo", "hi there"}) }},
		{[]string{`cmd echo $HOME`}, func(c runConfig) bool { return reflect.DeepEqual(c.Cmd, []string{"/bin/sh", "-c", "echo $HOME"}) }},
		{[]string{`CMD [not json`}, func(c runConfig) bool { return reflect.DeepEqual(c.Cmd, []string{"/bin/sh", "-c", "[not json"}) }},
		{[]string{`CMD []`}, func(c runConfig) bool { return c.Cmd != nil && len(c.Cmd) == 0 }},
		{[]string{`ENTRYPOINT ["/app"]`}, func(c runConfig) bool { return reflect.DeepEqual(c.Entrypoint, []string{"/app"}) && c.Cmd == nil }},
		{[]string{`CMD ["-v"]`, `ENTRYPOINT ["/app"]`}, func(c runConfig) bool { return reflect.DeepEqual(c.Cmd, []string{"-v"}) }},
		{[]string{`ENTRYPOINT /app`, `CMD ["-v"]`}, func(c runConfig) bool {
			return reflect.DeepEqual(c.Entrypoint, []string{"/bin/sh", "-c", "/app"}) && reflect.DeepEqual(c.Cmd, []string{"-v"})
		}},
		{[]string{`ENV A=1 B="two words" PATH=$PATH:/usr/bin`}, func(c runConfig) bool {
			return reflect.DeepEqual(c.Env, []string{"PATH=/bin:/usr/bin", "HOME=/root", "A=1", "B=two words"})
		}},
		{[]string{`ENV GREETING hello   big world`}, func(c runConfig) bool { return c.Env[2] == "GREETING=hello   big world" }},
		{[]string{`ENV X=${HOME}/x Y='$HOME' Z=${NOPE:-dflt} W=${HOME:+set} E=\$HOME`}, func(c runConfig) bool {
			return reflect.DeepEqual(c.Env[2:], []string{"X=/root/x", "Y=$HOME", "Z=dflt", "W=set", "E=$HOME"})
		}},
		{[]string{`ENV A=1`, `ENV B=$A$A`}, func(c runConfig) bool { return c.Env[3] == "B=11" }},
		{[]string{`LABEL a=b "c d"="e f"`, `LABEL legacy the value`}, func(c runConfig) bool {
			return reflect.DeepEqual(c.Labels, map[string]string{"a": "b", "c d": "e f", "legacy": "the value"})
		}},
		{[]string{`EXPOSE 80 53/udp 8000-8002/TCP`}, func(c runConfig) bool {
			return len(c.ExposedPorts) == 5 && has(c.ExposedPorts, "80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp")
		}},
		{[]string{`VOLUME ["/data", "/logs"]`, `VOLUME /a /b`}, func(c runConfig) bool { return len(c.Volumes) == 4 && has(c.Volumes, "/data", "/logs", "/a", "/b") }},
		{[]string{`USER nobody:nogroup`}, func(c runConfig) bool { return c.User == "nobody:nogroup" }},
		{[]string{`WORKDIR app`, `WORKDIR ../lib`}, func(c runConfig) bool { return c.WorkingDir == "/srv/lib" }},
		{[]string{`WORKDIR $HOME/w`}, func(c runConfig) bool { return c.WorkingDir == "/root/w" }},
		{[]string{`STOPSIGNAL SIGKILL`}, func(c runConfig) bool { return c.StopSignal == "SIGKILL" }},
		{[]string{`STOPSIGNAL 9`}, func(c runConfig) bool { return c.StopSignal == "9" }},
		{[]string{`STOPSIGNAL RTMIN+3`}, func(c runConfig) bool { return c.StopSignal == "RTMIN+3" }},
		{[]string{`ONBUILD RUN echo hi`, `onbuild COPY . /src`}, func(c runConfig) bool {
			return reflect.DeepEqual(c.OnBuild, []string{"RUN echo hi", "COPY . /src"})
		}},
	}
	for _, c := range cases {
		got := applyAll(t, base, c.changes...)
		if !c.check(got) {
			t.Errorf("%q gave %+v", c.changes, got)
		}
	}
	// The base was not changed through shared slices.
	if base.Env[0] != "PATH=/bin" || len(base.Env) != 2 {
		t.Errorf("applying changed the original env: %v", base.Env)
	}
	// A shell set by SHELL in the parent is used for the shell form.
	sh := applyAll(t, runConfig{Shell: []string{"/bin/bash", "-lc"}}, "CMD make")
	if !reflect.DeepEqual(sh.Cmd, []string{"/bin/bash", "-lc", "make"}) {
		t.Errorf("shell form with SHELL: %v", sh.Cmd)
	}
}

func has[V any](m map[string]V, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	return true
}

func TestChangesErrors(t *testing.T) {
	for _, c := range []struct{ change, want string }{
		{"RUN echo hi", "RUN is not a valid change command"},
		{"from busybox", "FROM is not a valid change command"},
		{"HEALTHCHECK NONE", "HEALTHCHECK is not a valid change command"},
		{"", "empty instruction"},
		{"CMD", "CMD requires at least one argument"},
		{"ENV", "ENV requires at least one argument"},
		{"ENV =x", "empty key"},
		{"ENV onlykey", "needs a value"},
		{"LABEL a=b c", `"c" is not of the form key=value`},
		{`ENV A="unterminated`, "unterminated double quote"},
		{`ENV A=${B`, "missing '}'"},
		{`ENV A=${B!}`, "bad substitution"},
		{"EXPOSE 0", "invalid port"},
		{"EXPOSE 70000", "invalid port"},
		{"EXPOSE 80/xyz", "invalid protocol"},
		{"EXPOSE 90-80", "invalid port range"},
		{"USER a b", "USER requires exactly one argument"},
		{"STOPSIGNAL SIGNOPE", "invalid signal"},
		{"STOPSIGNAL 99", "invalid signal"},
		{`VOLUME [""]`, "can not be an empty string"},
		{"ONBUILD ONBUILD RUN x", "chaining ONBUILD"},
		{"ONBUILD FROM x", "FROM is not allowed"},
		{"WORKDIR", "WORKDIR requires exactly one argument"},
	} {
		_, err := parseChanges([]string{"CMD ok", c.change})
		if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("change %q: error %v, want an invalid-argument error saying %q", c.change, err, c.want)
		}
	}
}
