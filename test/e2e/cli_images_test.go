package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/testutil"
)

// TestCLIImagesMatchDocker pulls, lists, tags, pushes, saves, loads and
// prunes images with berth from a registry on loopback, comparing what
// berth prints with docker's against the same daemon.
func TestCLIImagesMatchDocker(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	bb, err := testutil.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ml, err := testutil.MultiLayerImage()
	if err != nil {
		t.Fatal(err)
	}
	bbRef, mlRef := reg.Host+"/busybox:1", reg.Host+"/multi:latest"
	if err := testutil.PushImage(bbRef, bb, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	if err := testutil.PushImage(mlRef, ml, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	bbDigest, _ := bb.Digest()
	bbID, _ := bb.ConfigName()

	d := startDaemon(t)
	c := d.berthCLI(t)

	// pull: docker's plain progress lines when not on a terminal, then
	// the reference.
	out := c.ok("pull", bbRef)
	for _, want := range []string{"1: Pulling from busybox", "Pull complete", "Digest: " + bbDigest.String(),
		"Status: Downloaded newer image for " + bbRef, "\n" + bbRef + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("berth pull lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("pull drew terminal progress bars into a pipe:\n%q", out)
	}
	if out := c.ok("pull", "-q", mlRef); out != mlRef+"\n" {
		t.Errorf("pull -q: %q", out)
	}
	c.same("pull", bbRef) // "Image is up to date", the same text

	// run pulls a missing image, showing progress on stderr.
	c.ok("rmi", mlRef)
	r := c.run("", "run", "--rm", mlRef, "true")
	if r.ExitCode != 0 || !strings.Contains(r.Stderr, "Unable to find image '"+mlRef+"' locally") || !strings.Contains(r.Stderr, "Pull complete") || r.Stdout != "" {
		t.Errorf("run of a missing image: %s", r)
	}

	// images: the same table, rows, ids and filters.
	c.ok("tag", bbRef, "mybox:v1")
	c.sameLines("images")
	c.sameLines("images", "--digests")
	c.sameLines("images", "-q")
	c.same("images", "--no-trunc", "-q")
	c.sameLines("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}} {{.Size}}")
	c.same("images", "--filter", "reference=mybox", "--format", "{{.Repository}}")
	c.same("image", "ls", "mybox")
	c.sameJSON("images", "--format", "json")
	c.same("image", "inspect", bbRef)
	c.same("image", "inspect", "--format", "{{.Id}} {{.Os}} {{json .RepoTags}}", "mybox:v1")
	c.same("history", bbRef)
	c.same("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}", bbRef)
	c.same("history", "-H=false", "--format", "{{.CreatedSince}} {{.Size}}", bbRef)
	if out := c.ok("image", "inspect", "--format", "{{.Id}}", "mybox:v1"); strings.TrimSpace(out) != bbID.String() {
		t.Errorf("tagged image id %q", out)
	}

	// rmi: a conflict is an error (exit 1), a tag is untagged.
	if r := c.run("", "rmi", bbID.Hex[:12]); r.ExitCode != 1 || !strings.Contains(r.Stderr, "Error response from daemon") {
		t.Errorf("rmi of a shared id: %s", r)
	}
	if out := c.ok("rmi", "mybox:v1"); out != "Untagged: mybox:v1\n" {
		t.Errorf("rmi: %q", out)
	}

	// push, then pull the copy back.
	pushRef := reg.Host + "/copy:2"
	c.ok("tag", bbRef, pushRef)
	out = c.ok("push", pushRef)
	if !strings.Contains(out, "The push refers to repository ["+reg.Host+"/copy]") || !strings.Contains(out, "2: digest: sha256:") {
		t.Errorf("push:\n%s", out)
	}
	if out := c.ok("push", "-q", pushRef); out != pushRef+"\n" {
		t.Errorf("push -q: %q", out)
	}

	// save and load through a file and through a pipe.
	archive := filepath.Join(t.TempDir(), "bb.tar")
	c.ok("save", "-o", archive, bbRef)
	c.ok("rmi", "-f", bbID.Hex[:12])
	if out := c.ok("load", "-i", archive); out != "Loaded image: "+bbRef+"\n" {
		t.Errorf("load -i: %q", out)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	c.ok("rmi", bbRef)
	if r := c.run(string(data), "load"); r.ExitCode != 0 || r.Stdout != "Loaded image: "+bbRef+"\n" {
		t.Errorf("load from stdin: %s", r)
	}
	if r := c.run("", "save", "no-such-image"); r.ExitCode != 1 || !strings.Contains(r.Stderr, "no-such-image") {
		t.Errorf("save of a missing image: %s", r)
	}

	// system df and prune.
	c.same("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}")
	out = c.ok("system", "df")
	if !strings.HasPrefix(out, "TYPE ") || !strings.Contains(out, "Images ") || !strings.Contains(out, "Build Cache") {
		t.Errorf("system df:\n%s", out)
	}
	c.same("image", "prune", "-f")
	if out := c.ok("image", "prune", "-a", "-f"); !strings.Contains(out, "deleted: "+bbID.String()) {
		t.Errorf("image prune -a:\n%s", out)
	}
	c.sameLines("images", "-q")
}

// TestCLILogin stores credentials in berth's config.json (Docker's
// format) and pulls with them; logout removes them.
func TestCLILogin(t *testing.T) {
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
	c := d.berthCLI(t)
	cfgDir := filepath.Join(t.TempDir(), "cfg")

	// Without credentials the pull is refused, with a hint.
	if r := c.run("", "--config", cfgDir, "pull", ref); r.ExitCode != 1 || !strings.Contains(r.Stderr, "berth login "+reg.Host) {
		t.Errorf("anonymous pull from an auth registry: %s", r)
	}
	if r := c.run("wrong\n", "--config", cfgDir, "login", "-u", reg.User, "--password-stdin", reg.Host); r.ExitCode != 1 || !strings.Contains(r.Stderr, "Error response from daemon") {
		t.Errorf("login with a wrong password: %s", r)
	}
	if _, err := os.Stat(filepath.Join(cfgDir, "config.json")); err == nil {
		t.Errorf("a failed login wrote config.json")
	}
	if r := c.run(reg.Password+"\n", "--config", cfgDir, "login", "-u", reg.User, "--password-stdin", reg.Host); r.ExitCode != 0 || r.Stdout != "Login Succeeded\n" {
		t.Fatalf("login: %s", r)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, err := os.ReadFile(filepath.Join(cfgDir, "config.json"))
	if err != nil || json.Unmarshal(b, &cfg) != nil {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	if got, _ := base64.StdEncoding.DecodeString(cfg.Auths[reg.Host].Auth); string(got) != reg.User+":"+reg.Password {
		t.Errorf("stored credentials for %s: %s", reg.Host, b)
	}
	if out := c.ok("--config", cfgDir, "pull", ref); !strings.Contains(out, "Downloaded newer image for "+ref) {
		t.Errorf("pull with stored credentials:\n%s", out)
	}
	// docker reads the same file format.
	c.docker.env = append(c.docker.env, "DOCKER_CONFIG="+cfgDir)
	c.docker.ok("tag", ref, reg.Host+"/private/copy:1")
	if out := c.docker.ok("push", reg.Host+"/private/copy:1"); !strings.Contains(out, "1: digest:") {
		t.Errorf("docker push with berth's config.json:\n%s", out)
	}
	// An interactive login on a terminal prompts, without echoing the
	// password.
	cfg2 := filepath.Join(t.TempDir(), "cfg2")
	tm := c.startTerm("--config", cfg2, "login", reg.Host)
	tm.expect("Username: ")
	tm.send(reg.User + "\r")
	tm.expect("Password: ")
	tm.send(reg.Password + "\r")
	tm.expect("Login Succeeded")
	if code := tm.wait(); code != 0 {
		t.Errorf("interactive login: exit %d", code)
	}
	tm.mu.Lock()
	if strings.Contains(tm.out.String(), reg.Password) {
		t.Errorf("the password was echoed:\n%s", tm.out.String())
	}
	tm.mu.Unlock()
	// Stored credentials need no prompt; without any, a login needs a
	// terminal.
	if r := c.run("", "--config", cfg2, "login", reg.Host); r.ExitCode != 0 || r.Stdout != "Authenticating with existing credentials...\nLogin Succeeded\n" {
		t.Errorf("login with stored credentials: %s", r)
	}
	if r := c.run("", "--config", filepath.Join(t.TempDir(), "cfg3"), "login", reg.Host); r.ExitCode != 1 || !strings.Contains(r.Stderr, "Cannot perform an interactive login from a non TTY device") {
		t.Errorf("login without a terminal: %s", r)
	}
	if out := c.ok("--config", cfgDir, "logout", reg.Host); out != "Removing login credentials for "+reg.Host+"\n" {
		t.Errorf("logout: %q", out)
	}
	if out := c.ok("--config", cfgDir, "logout", reg.Host); out != "Not logged in to "+reg.Host+"\n" {
		t.Errorf("second logout: %q", out)
	}
	b, _ = os.ReadFile(filepath.Join(cfgDir, "config.json"))
	if strings.Contains(string(b), reg.Host) {
		t.Errorf("config.json after logout: %s", b)
	}
}
