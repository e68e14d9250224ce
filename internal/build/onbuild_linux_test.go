package build

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
)

// rawRunConfig returns the "config" object of image id's config blob with
// each field's JSON as stored.
func (e *env) rawRunConfig(id digest.Digest) map[string]json.RawMessage {
	e.t.Helper()
	img, err := e.svc.Resolve(e.ctx, id.String())
	if err != nil {
		e.t.Fatal(err)
	}
	raw, err := e.svc.RawConfig(e.ctx, img)
	if err != nil {
		e.t.Fatal(err)
	}
	var top struct {
		Config map[string]json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		e.t.Fatal(err)
	}
	return top.Config
}

// imageIDLine matches the " ---> <short id>" line a finished step prints.
var imageIDLine = regexp.MustCompile(`(?m)^ ---> [0-9a-f]{12}$`)

// TestDockerConfigFieldsAndTriggers builds an image with HEALTHCHECK,
// SHELL and ONBUILD and checks that its config holds them as Docker
// stores them; then a child image FROM it, whose build runs the triggers
// first (a RUN, and a COPY from the child's context) and whose config has
// none left; then a grandchild, which runs none.
func TestDockerConfigFieldsAndTriggers(t *testing.T) {
	e := newEnv(t)
	parentDir := e.writeContext(map[string]string{"Dockerfile": `FROM busybox
SHELL ["/bin/sh", "-ec"]
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=4 CMD wget -q localhost || exit 1
ONBUILD RUN touch /triggered
ONBUILD COPY trigger.txt /from-trigger.txt
`, "trigger.txt": "from the parent's context\n"})
	parent, _ := e.mustBuild(parentDir, Options{Tags: []string{"parent:latest"}})
	rc := e.rawRunConfig(parent)
	for field, want := range map[string]string{
		"Healthcheck": `{"Test":["CMD-SHELL","wget -q localhost || exit 1"],"Interval":5000000000,"Timeout":3000000000,"StartPeriod":10000000000,"Retries":4}`,
		"Shell":       `["/bin/sh","-ec"]`,
		"OnBuild":     `["RUN touch /triggered","COPY trigger.txt /from-trigger.txt"]`,
	} {
		if got := string(rc[field]); got != want {
			t.Errorf("parent config %s = %s, want %s", field, got, want)
		}
	}

	childDir := e.writeContext(map[string]string{
		"Dockerfile":  "FROM parent\nRUN test -f /triggered\n",
		"trigger.txt": "from the child's context\n",
	})
	child, out := e.mustBuild(childDir, Options{Tags: []string{"child:latest"}})
	// As Docker's classic builder: the count of triggers after the FROM
	// step, each trigger's container lines, one image ID after them all.
	head, rest, ok := strings.Cut(out, "# Executing 2 build triggers\n")
	if !ok || !strings.HasSuffix(head, "Step 1/2 : FROM parent\n") {
		t.Fatalf("no trigger line after the FROM step:\n%s", out)
	}
	triggers, _, ok := strings.Cut(rest, "Step 2/2 : RUN test -f /triggered\n")
	if !ok || len(imageIDLine.FindAllString(triggers, -1)) != 1 || !strings.HasPrefix(triggers, " ---> Running in ") ||
		!strings.Contains(triggers, "Removing intermediate container ") {
		t.Errorf("trigger output is not Docker's:\n%s", out)
	}
	if got, _ := e.readFile(child, "/from-trigger.txt"); got != "from the child's context\n" {
		t.Errorf("/from-trigger.txt = %q, want the child's context file", got)
	}
	if _, ok := e.readFile(child, "/triggered"); !ok {
		t.Errorf("the RUN trigger did not run")
	}
	rc = e.rawRunConfig(child)
	if _, ok := rc["OnBuild"]; ok {
		t.Errorf("child config keeps the triggers: %s", rc["OnBuild"])
	}
	_, c := e.config(child)
	if c.Healthcheck == nil || c.Healthcheck.Retries != 4 || !reflect.DeepEqual(c.Shell, []string{"/bin/sh", "-ec"}) {
		t.Errorf("child config lost the health check or the shell: %+v %q", c.Healthcheck, c.Shell)
	}
	h := e.history(child)
	if n := len(h); n < 3 || h[n-3] != "/bin/sh -ec touch /triggered" || !strings.HasPrefix(h[n-2], "/bin/sh -ec #(nop) COPY file:") {
		t.Errorf("history of the triggers:\n%s", strings.Join(h, "\n"))
	}

	// A rebuild takes the triggers' steps from the cache.
	again, out := e.mustBuild(childDir, Options{})
	if again != child || strings.Contains(out, "Running in") || strings.Count(out, " ---> Using cache\n") != 3 {
		t.Errorf("rebuild made %s (first %s):\n%s", shortID(again), shortID(child), out)
	}

	// The grandchild runs no trigger; HEALTHCHECK NONE disables the check
	// and, as in Docker's classic builder, keeps the durations and retries
	// of the check it replaces (so does any HEALTHCHECK leaving them unset).
	grandDir := e.writeContext(map[string]string{"Dockerfile": "FROM child\nHEALTHCHECK NONE\n"})
	grand, out := e.mustBuild(grandDir, Options{})
	if strings.Contains(out, "build trigger") || !strings.Contains(out, "Note: overriding previous HEALTHCHECK: [CMD-SHELL wget -q localhost || exit 1]\n") {
		t.Errorf("grandchild build output:\n%s", out)
	}
	if got := string(e.rawRunConfig(grand)["Healthcheck"]); got != `{"Test":["NONE"],"Interval":5000000000,"Timeout":3000000000,"StartPeriod":10000000000,"Retries":4}` {
		t.Errorf("HEALTHCHECK NONE stored %s", got)
	}
}

// TestStageTriggers checks that a stage FROM an earlier stage with ONBUILD
// runs that stage's triggers, and that StartInterval is stored when set.
func TestStageTriggers(t *testing.T) {
	e := newEnv(t)
	dir := e.writeContext(map[string]string{"Dockerfile": `FROM busybox AS base
ONBUILD RUN echo stage-trigger > /st
HEALTHCHECK --start-interval=2s CMD ["true"]
FROM base
RUN test -f /st
`})
	id, out := e.mustBuild(dir, Options{})
	if !strings.Contains(out, "Step 4/5 : FROM base\n# Executing 1 build trigger\n ---> Running in ") {
		t.Errorf("output lacks the trigger line:\n%s", out)
	}
	if got, _ := e.readFile(id, "/st"); got != "stage-trigger\n" {
		t.Errorf("/st = %q", got)
	}
	rc := e.rawRunConfig(id)
	if got := string(rc["Healthcheck"]); got != `{"Test":["CMD","true"],"StartInterval":2000000000}` {
		t.Errorf("health check stored as %s", got)
	}
	if _, ok := rc["OnBuild"]; ok {
		t.Errorf("triggers kept: %s", rc["OnBuild"])
	}
}

// TestForbiddenTriggers builds FROM images whose triggers (written by
// another tool: ONBUILD itself refuses them) Docker does not run, and
// from one with a trigger that fails.
func TestForbiddenTriggers(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ trigger, want string }{
		{"FROM busybox", "FROM isn't allowed as an ONBUILD trigger"},
		{"maintainer me", "MAINTAINER isn't allowed as an ONBUILD trigger"},
		{"ONBUILD RUN true", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"},
		{"NOSUCH x", "unknown instruction: NOSUCH"},
		{"RUN true\nRUN false", "onbuild trigger should be a single expression"},
	} {
		img, err := e.svc.CreateImage(e.ctx, image.ImageSpec{
			Parent: e.busybox, Docker: &image.DockerConfig{OnBuild: []string{"ENV OK=1", tc.trigger}},
			CreatedBy: "test", Ref: "bad-trigger:latest",
		})
		if err != nil {
			t.Fatal(err)
		}
		dir := e.writeContext(map[string]string{"Dockerfile": "FROM bad-trigger\nRUN true\n"})
		_, out, err := e.build(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errdefs.IsInvalidArgument(err) ||
			!strings.Contains(err.Error(), "dockerfile line 1: FROM bad-trigger: build trigger ") {
			t.Errorf("trigger %q: error %v, want %q\n%s", tc.trigger, err, tc.want, out)
		}
		if rc := e.rawRunConfig(img.ID); string(rc["OnBuild"]) == "" {
			t.Errorf("test image has no triggers")
		}
	}

	// A failing RUN trigger fails the build with the command's exit code.
	dir := e.writeContext(map[string]string{"Dockerfile": "FROM busybox\nONBUILD RUN exit 3\n"})
	e.mustBuild(dir, Options{Tags: []string{"failing:latest"}})
	child := e.writeContext(map[string]string{"Dockerfile": "FROM failing\n"})
	_, out, err := e.build(child, Options{})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Errorf("failing trigger: error %v, want exit code 3\n%s", err, out)
	}
}
