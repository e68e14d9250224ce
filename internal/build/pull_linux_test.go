package build

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/registry"
	"github.com/berth-project/berth/internal/testutil"
)

// TestFromPulls builds FROM an image that is only in a (loopback) registry:
// it is pulled. A new image under that name is used only with Pull.
func TestFromPulls(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	img, err := testutil.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/lib/bb:v1"
	if err := testutil.PushImage(ref, img, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	opts := registry.Options{ConfigDir: filepath.Join(e.root, "docker-config")}
	if reg.CAPool != nil {
		opts.RootCAs = reg.CAPool
	}
	e.svc.SetRegistry(registry.New(opts))
	dir := e.writeContext(map[string]string{"Dockerfile": "FROM " + ref + "\nRUN echo pulled > /p\n"})
	id, _ := e.mustBuild(dir, Options{})
	if got, _ := e.readFile(id, "/p"); got != "pulled\n" {
		t.Errorf("/p = %q", got)
	}
	want, _ := img.ConfigName()
	base, err := e.svc.Resolve(e.ctx, ref)
	if err != nil || base.ID.String() != want.String() {
		t.Fatalf("%s is %v (%v), want %s", ref, base.ID, err, want)
	}
	// A new image under the same name: without Pull the local one is
	// used (all from the cache), with Pull the new one is.
	layer, err := busyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	img2, err := testutil.ImageFromLayers([][]byte{layer}, nil, map[string]string{"version": "2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.PushImage(ref, img2, reg.PushOptions()); err != nil {
		t.Fatal(err)
	}
	if again, out := e.mustBuild(dir, Options{}); again != id {
		t.Errorf("without Pull the build changed:\n%s", out)
	}
	pulled, out := e.mustBuild(dir, Options{Pull: true})
	want2, _ := img2.ConfigName()
	if base, err := e.svc.Resolve(e.ctx, ref); err != nil || base.ID.String() != want2.String() {
		t.Errorf("after a build with Pull %s is %v (%v), want %s", ref, base.ID, err, want2)
	}
	if pulled == id || strings.Contains(out, "Using cache") {
		t.Errorf("the build with Pull did not use the new base:\n%s", out)
	}
}
