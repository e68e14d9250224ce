package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// eventTime formats t for docker events --since and --until.
func eventTime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// TestContainerEvents runs a container through its life and reads the
// events docker events shows for it between --since and --until, with
// Docker's actions and attribute names.
func TestContainerEvents(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)
	since := time.Now()
	c.ok("run", "-d", "--name", "ev", "--label", "team=a", "busybox", "sleep", "1000")
	if r := c.run("", "exec", "ev", "sh", "-c", "exit 3"); r.ExitCode != 3 {
		t.Fatalf("exec exit 3: %s", r)
	}
	c.ok("pause", "ev")
	c.ok("unpause", "ev")
	c.ok("rename", "ev", "ev2")
	c.ok("kill", "-s", "USR1", "ev2")
	c.ok("stop", "-t", "1", "ev2")
	c.ok("rm", "ev2")
	if r := c.run("in\n", "run", "-i", "--rm", "--name", "short", "busybox", "sh", "-c", "read x; exit 2"); r.ExitCode != 2 {
		t.Fatalf("run -i --rm: %s", r)
	}
	until := time.Now()

	events := func(filters ...string) string {
		args := []string{"events", "--since", eventTime(since), "--until", eventTime(until),
			"--format", `{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes "exitCode"}}{{index .Actor.Attributes "signal"}}{{index .Actor.Attributes "oldName"}}`}
		for _, f := range filters {
			args = append(args, "--filter", f)
		}
		return c.ok(args...)
	}
	got := events("type=container", "container=ev", "container=ev2")
	want := []string{
		"container create ev ",
		"container start ev ",
		"container exec_create: sh -c exit 3 ev ",
		"container exec_start: sh -c exit 3 ev ",
		"container exec_die ev 3",
		"container pause ev ",
		"container unpause ev ",
		"container rename ev2 /ev",
		"container kill ev2 10",
		"container kill ev2 15",
		// Docker tells the escalation to SIGKILL too.
		"container kill ev2 9",
		"container die ev2 137",
		"container stop ev2 ",
		"container destroy ev2 ",
	}
	if got != strings.Join(want, "\n")+"\n" {
		t.Errorf("events of ev:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	// docker run (attached) shows the attach before the start.
	got = events("container=short")
	want = []string{
		"container create short ",
		"container attach short ",
		"container start short ",
		"container die short 2",
		"container destroy short ",
	}
	if e.isBerth() {
		// The default bridge's connect and disconnect, between them.
		got = regexp.MustCompile(`(?m)^network (connect|disconnect) bridge \n`).ReplaceAllString(got, "")
	}
	if got != strings.Join(want, "\n")+"\n" {
		t.Errorf("events of short:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if got := events("container=short", "event=die"); got != "container die short 2\n" {
		t.Errorf("events --filter event=die: %q", got)
	}
	if got := events("label=team=a", "event=create"); got != "container create ev \n" {
		t.Errorf("events --filter label: %q", got)
	}
	out := c.ok("events", "--since", eventTime(since), "--until", eventTime(until), "--filter", "event=create", "--filter", "container=ev",
		"--format", "{{.Type}}|{{.Status}}|{{.From}}|{{len .ID}}|{{.Actor.Attributes.image}}|{{.Actor.Attributes.team}}|{{.Scope}}")
	if out != "container|create|busybox|64|busybox|a|local\n" {
		t.Errorf("a create event's fields: %q", out)
	}
}

// TestDfAndPrune checks docker system df's counts and container prune
// with filters.
func TestDfAndPrune(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)
	c.ok("run", "-d", "--name", "running", "busybox", "sleep", "1000")
	defer c.ok("rm", "-f", "running")
	c.ok("run", "--name", "keep", "--label", "keep=yes", "busybox", "sh", "-c", "echo 12345 > /file")
	c.ok("run", "--name", "drop", "busybox", "true")
	c.ok("create", "--name", "created", "busybox")
	out := c.ok("system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}")
	if want := "Images|1|1\nContainers|4|1\nLocal Volumes|0|0\nBuild Cache|0|0\n"; out != want {
		t.Errorf("system df:\n%s\nwant:\n%s", out, want)
	}
	out = c.ok("system", "df", "-v", "--format", "{{range .Containers}}{{.Names}} {{.Size}}|{{end}}")
	if !strings.Contains(out, "keep 6B|") {
		t.Errorf("system df -v: container keep's size: %q", out)
	}
	dropID, createdID := c.id("drop"), c.id("created")
	out = c.ok("container", "prune", "-f", "--filter", "label!=keep=yes")
	if !strings.HasPrefix(out, "Deleted Containers:\n") || !strings.Contains(out, dropID+"\n") || !strings.Contains(out, createdID+"\n") ||
		!strings.Contains(out, "\nTotal reclaimed space: ") || strings.Count(out, "\n") != 5 {
		t.Errorf("container prune:\n%s", out)
	}
	if out := c.ok("ps", "-a", "--format", "{{.Names}}"); out != "keep\nrunning\n" {
		t.Errorf("after prune: %q", out)
	}
	out = c.ok("container", "prune", "-f", "--filter", "until="+eventTime(time.Now().Add(-time.Hour)))
	if out != "Total reclaimed space: 0B\n" {
		t.Errorf("prune of nothing: %q", out)
	}
	out = c.ok("container", "prune", "-f")
	if !strings.Contains(out, "Total reclaimed space: 6B") {
		t.Errorf("prune of keep: %q", out)
	}
	if out := c.ok("ps", "-a", "--format", "{{.Names}}"); out != "running\n" {
		t.Errorf("prune removed a running container: %q", out)
	}
}
