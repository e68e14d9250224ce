package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/testutil"
)

// imageRow is one line of docker images --format '{{json .}}'.
type imageRow struct {
	Repository, Tag, ID, Digest, Size, CreatedSince string
}

func imageRows(t *testing.T, out string) []imageRow {
	t.Helper()
	var rows []imageRow
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r imageRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("images row %q: %v", line, err)
		}
		rows = append(rows, r)
	}
	return rows
}

// TestImageLifecycle walks an image through the CLI: pull, list, inspect,
// history, tag, push, remove, save, load, prune, df and events.
func TestImageLifecycle(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	bb, err := testutil.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ml, err := testutil.MultiLayerImage()
	if err != nil {
		t.Fatal(err)
	}
	bbRef := reg.Host + "/busybox:1"
	mlRef := reg.Host + "/multi:latest"
	if err := testutil.PushImage(bbRef, bb, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	if err := testutil.PushImage(mlRef, ml, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	bbDigest, err := bb.Digest()
	if err != nil {
		t.Fatal(err)
	}
	bbID, err := bb.ConfigName()
	if err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t)
	c := d.cli(t)
	start := time.Now()

	// pull
	out := c.ok("pull", bbRef)
	for _, want := range []string{"1: Pulling from ", "Pull complete", "Digest: " + bbDigest.String(),
		"Status: Downloaded newer image for " + bbRef, bbRef} {
		if !strings.Contains(out, want) {
			t.Errorf("docker pull output lacks %q:\n%s", want, out)
		}
	}
	if out := c.ok("pull", bbRef); !strings.Contains(out, "Status: Image is up to date for "+bbRef) {
		t.Errorf("second pull:\n%s", out)
	}
	c.ok("pull", mlRef)

	// images: table, json, -q, --digests, filters
	out = c.ok("images")
	if !strings.Contains(out, reg.Host+"/busybox") || !strings.Contains(out, bbID.Hex[:12]) {
		t.Errorf("docker images:\n%s", out)
	}
	rows := imageRows(t, c.ok("images", "--format", "{{json .}}"))
	if len(rows) != 2 {
		t.Fatalf("images: %+v", rows)
	}
	var bbRow imageRow
	for _, r := range rows {
		if r.Repository == reg.Host+"/busybox" {
			bbRow = r
		}
	}
	if bbRow.Tag != "1" || bbRow.ID != bbID.Hex[:12] || bbRow.Size == "0B" || bbRow.Size == "" {
		t.Errorf("busybox row: %+v", bbRow)
	}
	if ids := strings.Fields(c.ok("images", "-q")); len(ids) != 2 {
		t.Errorf("images -q: %v", ids)
	}
	if out := c.ok("images", "--digests", "--format", "{{.Repository}} {{.Digest}}", reg.Host+"/busybox"); strings.TrimSpace(out) != reg.Host+"/busybox "+bbDigest.String() {
		t.Errorf("images --digests: %q", out)
	}
	if out := c.ok("images", "--filter", "reference=*/multi", "--format", "{{.Repository}}"); strings.TrimSpace(out) != reg.Host+"/multi" {
		t.Errorf("images --filter reference: %q", out)
	}
	if out := c.ok("images", "--filter", "dangling=true", "-q"); out != "" {
		t.Errorf("images --filter dangling=true: %q", out)
	}

	// inspect
	var insp []struct {
		ID               string `json:"Id"`
		RepoTags         []string
		RepoDigests      []string
		Parent           string
		Created          string
		Config           struct{ Cmd []string }
		Architecture, Os string
		Size             int64
		RootFS           struct {
			Type   string
			Layers []string
		}
		Metadata    struct{ LastTagTime string }
		GraphDriver struct {
			Name string
			Data map[string]string
		}
	}
	if err := json.Unmarshal([]byte(c.ok("image", "inspect", bbRef)), &insp); err != nil {
		t.Fatal(err)
	}
	if len(insp) != 1 {
		t.Fatalf("inspect: %+v", insp)
	}
	in := insp[0]
	cf, _ := bb.ConfigFile()
	if in.ID != bbID.String() || len(in.RepoTags) != 1 || in.RepoTags[0] != bbRef ||
		len(in.RepoDigests) != 1 || in.RepoDigests[0] != reg.Host+"/busybox@"+bbDigest.String() ||
		in.Architecture != cf.Architecture || in.Os != "linux" || in.Size <= 0 ||
		in.RootFS.Type != "layers" || len(in.RootFS.Layers) != len(cf.RootFS.DiffIDs) ||
		strings.Join(in.Config.Cmd, " ") != strings.Join(cf.Config.Cmd, " ") {
		t.Errorf("inspect: %+v", in)
	}
	if _, err := time.Parse(time.RFC3339Nano, in.Created); err != nil {
		t.Errorf("Created %q: %v", in.Created, err)
	}
	if in.GraphDriver.Name == "" || in.GraphDriver.Data["UpperDir"] == "" || !strings.HasPrefix(in.GraphDriver.Data["UpperDir"], d.DataRoot) {
		t.Errorf("GraphDriver: %+v", in.GraphDriver)
	}
	if f := c.ok("image", "inspect", "--format", "{{.Id}} {{.Os}}", bbID.Hex[:12]); strings.TrimSpace(f) != bbID.String()+" linux" {
		t.Errorf("inspect by short id: %q", f)
	}

	// history
	hist := c.ok("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}", bbRef)
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	if len(lines) != len(cf.History) && len(cf.History) > 0 || !strings.HasPrefix(lines[0], bbID.String()+"|") {
		t.Errorf("history (config has %d entries):\n%s", len(cf.History), hist)
	}

	// tag
	c.ok("tag", bbRef, "mybox:v1")
	if out := c.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "mybox"); strings.TrimSpace(out) != "mybox:v1 "+bbID.Hex[:12] {
		t.Errorf("after tag: %q", out)
	}
	if out := c.ok("image", "inspect", "--format", "{{.Metadata.LastTagTime.Unix}}", "mybox:v1"); strings.TrimSpace(out) == "0" || strings.HasPrefix(out, "-") {
		t.Errorf("LastTagTime after tag: %q", out)
	}

	// rmi by ID of an image with two names: conflict, exit 1.
	stderr := c.fail(1, "rmi", bbID.Hex[:12])
	if !strings.Contains(stderr, "Error response from daemon") || !strings.Contains(stderr, "must be forced") ||
		!strings.Contains(stderr, "referenced in multiple repositories") {
		t.Errorf("rmi conflict: %s", stderr)
	}
	if out := c.ok("rmi", "mybox:v1"); strings.TrimSpace(out) != "Untagged: mybox:v1" {
		t.Errorf("rmi mybox:v1: %q", out)
	}

	// push to another repository of the same registry: layers are mounted.
	pushRef := reg.Host + "/copy:2"
	c.ok("tag", bbRef, pushRef)
	out = c.ok("push", pushRef)
	if !strings.Contains(out, "The push refers to repository ["+reg.Host+"/copy]") || !strings.Contains(out, "2: digest: sha256:") {
		t.Errorf("push:\n%s", out)
	}
	c.ok("rmi", pushRef)
	if out := c.ok("pull", pushRef); !strings.Contains(out, "Already exists") || !strings.Contains(out, "Status: Downloaded newer image for "+pushRef) {
		t.Errorf("pull of the pushed copy:\n%s", out)
	}

	// save and load
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	c.ok("save", "-o", archive, bbRef)
	if st, err := os.Stat(archive); err != nil || st.Size() < 1024 {
		t.Fatalf("saved archive: %v %v", st, err)
	}
	out = c.ok("rmi", "-f", bbID.Hex[:12])
	if !strings.Contains(out, "Deleted: "+bbID.String()) || !strings.Contains(out, "Untagged: "+bbRef) {
		t.Errorf("rmi -f:\n%s", out)
	}
	c.fail(1, "image", "inspect", bbRef)
	out = c.ok("load", "-i", archive)
	if strings.TrimSpace(out) != "Loaded image: "+bbRef {
		t.Errorf("load: %q", out)
	}
	if out := c.ok("image", "inspect", "--format", "{{.Id}}", bbRef); strings.TrimSpace(out) != bbID.String() {
		t.Errorf("loaded image id %q", out)
	}

	// system df
	out = c.ok("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
	if !strings.Contains(out, "Images 2") || !strings.Contains(out, "Containers 0") {
		t.Errorf("system df:\n%s", out)
	}

	// prune -a removes everything unused.
	out = c.ok("image", "prune", "-a", "-f")
	if !strings.Contains(out, "deleted: "+bbID.String()) || !strings.Contains(out, "untagged: "+bbRef) || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("image prune -a -f:\n%s", out)
	}
	if out := c.ok("images", "-q"); out != "" {
		t.Errorf("after prune: %q", out)
	}
	entries, err := os.ReadDir(filepath.Join(d.DataRoot, "content", "blobs", "sha256"))
	if err != nil || len(entries) != 0 {
		t.Errorf("blobs left after prune: %d %v", len(entries), err)
	}

	// events between start and now.
	out = c.ok("events", "--since", start.Format(time.RFC3339Nano), "--until", time.Now().Format(time.RFC3339Nano),
		"--filter", "type=image", "--format", "{{.Action}} {{.Actor.ID}}")
	for _, want := range []string{"pull " + bbRef, "tag " + bbID.String(), "untag " + bbID.String(), "delete " + bbID.String(),
		"push " + pushRef, "save " + bbID.String(), "load " + bbID.String()} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("events lack %q:\n%s", want, out)
		}
	}
	out = c.ok("events", "--since", start.Format(time.RFC3339Nano), "--until", time.Now().Format(time.RFC3339Nano),
		"--filter", "event=pull", "--filter", "image="+mlRef, "--format", "{{.Action}} {{.Actor.ID}}")
	if strings.TrimSpace(out) != "pull "+mlRef {
		t.Errorf("filtered events: %q", out)
	}
}

// TestPullErrors checks Docker's messages and exit codes for a missing
// image and a missing registry.
func TestPullErrors(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	d := startDaemon(t)
	c := d.cli(t)
	stderr := c.fail(1, "pull", reg.Host+"/nope:1")
	if !strings.Contains(stderr, "Error response from daemon: manifest for "+reg.Host+"/nope:1 not found") {
		t.Errorf("pull of a missing image: %s", stderr)
	}
	stderr = c.fail(1, "push", reg.Host+"/nope:1")
	if !strings.Contains(stderr, "nope") {
		t.Errorf("push of a missing image: %s", stderr)
	}
	if out := c.ok("images", "-q"); out != "" {
		t.Errorf("images after failed pulls: %q", out)
	}
}

// TestLogin logs in to a registry that wants a password, then pulls with
// the stored credentials.
func TestLogin(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: true})
	bb, err := testutil.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/private/busybox:1"
	if err := testutil.PushImage(ref, bb, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t)
	c := d.cli(t)

	// An anonymous pull is refused with 401 (through the API: the CLI
	// would prompt for a login).
	resp, err := d.httpClient().Post("http://berth/images/create?fromImage="+url.QueryEscape(ref), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous pull from an auth registry: %d %s", resp.StatusCode, body)
	}
	r := c.run("wrong\n", "login", "-u", reg.User, "--password-stdin", reg.Host)
	if r.ExitCode != 1 || !strings.Contains(r.Stderr, "Error response from daemon") {
		t.Errorf("login with a wrong password: %s", r)
	}
	r = c.run(reg.Password+"\n", "login", "-u", reg.User, "--password-stdin", reg.Host)
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "Login Succeeded") {
		t.Fatalf("login: %s", r)
	}
	if out := c.ok("pull", ref); !strings.Contains(out, "Downloaded newer image for "+ref) {
		t.Errorf("pull with credentials:\n%s", out)
	}
	c.ok("tag", ref, reg.Host+"/private/copy:1")
	if out := c.ok("push", reg.Host+"/private/copy:1"); !strings.Contains(out, "1: digest: sha256:") {
		t.Errorf("push with credentials:\n%s", out)
	}
}
