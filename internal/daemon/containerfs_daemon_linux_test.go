package daemon

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/errdefs"
)

// These tests run busybox containers on a real daemon (newTestDaemon) and
// drive diff, cp, export, commit and prune on them, running and stopped.

// fsScript is what the test containers do to their file system: a file in
// their volume, a new file, a removed applet link (last, so that its
// deletion shows that the rest is done).
const fsScript = "echo vol > /data/v.txt; echo hi > /new; rm /bin/ls"

// fsChanges is what docker diff shows after fsScript.
var fsChanges = []api.FilesystemChange{
	{Kind: api.ChangeModify, Path: "/bin"},
	{Kind: api.ChangeDelete, Path: "/bin/ls"},
	{Kind: api.ChangeAdd, Path: "/new"},
}

// fsChangesAfterCp is what docker diff shows after fsScript and the
// extractions of checkCommonFS.
var fsChangesAfterCp = []api.FilesystemChange{
	{Kind: api.ChangeModify, Path: "/bin"},
	{Kind: api.ChangeDelete, Path: "/bin/ls"},
	{Kind: api.ChangeModify, Path: "/etc"},
	{Kind: api.ChangeAdd, Path: "/etc/put.conf"},
	{Kind: api.ChangeAdd, Path: "/new"},
	{Kind: api.ChangeModify, Path: "/tmp"},
	{Kind: api.ChangeAdd, Path: "/tmp/etclink"},
	{Kind: api.ChangeAdd, Path: "/tmp/root.txt"},
	// The refused archive's symlink came before its bad entry: like
	// Docker, extraction is not atomic.
	{Kind: api.ChangeAdd, Path: "/tmp/up"},
}

// fsContainer creates a container running cmd with an anonymous volume at
// /data and a tmpfs at /scratch (mount points diff must hide).
func (td *testDaemon) fsContainer(t *testing.T, name string, cmd string, hc *api.HostConfig) string {
	t.Helper()
	if hc == nil {
		hc = &api.HostConfig{}
	}
	hc.Tmpfs = map[string]string{"/scratch": ""}
	return td.create(t, name, &api.Config{
		Cmd:     []string{"sh", "-c", cmd},
		Volumes: map[string]struct{}{"/data": {}},
		Labels:  map[string]string{"test": "containerfs"},
	}, hc)
}

// archiveOf is ContainerArchive read to its end and closed.
func (td *testDaemon) archiveOf(t *testing.T, ref, p string) (PathStat, []string, map[string]*tar.Header, map[string]string) {
	t.Helper()
	rc, st, err := td.ContainerArchive(ctxT(t), ref, p)
	if err != nil {
		t.Fatalf("archive %s: %v", p, err)
	}
	defer rc.Close()
	names, hdrs, data := cfsTarEntries(t, rc)
	return st, names, hdrs, data
}

// checkCommonFS checks diff, stat, archive GET and PUT on the container
// ref, which ran fsScript (and may still run).
func (td *testDaemon) checkCommonFS(t *testing.T, ref string) {
	ctx := ctxT(t)
	var got []api.FilesystemChange
	poll(t, "the container's changes", func() bool {
		var err error
		got, err = td.ContainerChanges(ctx, ref)
		if err != nil {
			t.Fatalf("changes: %v", err)
		}
		return reflect.DeepEqual(got, fsChanges)
	})

	st, err := td.StatContainerPath(ctx, ref, "/new")
	if err != nil || st.Name != "new" || st.Size != 3 || !st.Mode.IsRegular() {
		t.Errorf("stat /new: %+v %v", st, err)
	}
	st, err = td.StatContainerPath(ctx, ref, "bin/sh")
	if err != nil || st.Mode&os.ModeSymlink == 0 || st.LinkTarget != "/bin/busybox" {
		t.Errorf("stat bin/sh: %+v %v", st, err)
	}
	st, err = td.StatContainerPath(ctx, ref, "/data/v.txt")
	if err != nil || st.Size != 4 {
		t.Errorf("stat of a file in the volume: %+v %v", st, err)
	}
	if _, err := td.StatContainerPath(ctx, ref, "/new/"); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("stat of a file as a directory: %v", err)
	}
	_, err = td.StatContainerPath(ctx, ref, "/bin/ls")
	if !errdefs.IsNotFound(err) || err.Error() != "Could not find the file /bin/ls in container "+ref+": not found" {
		t.Errorf("stat of a deleted file: %v", err)
	}

	_, names, hdrs, data := td.archiveOf(t, ref, "/new")
	if !slices.Equal(names, []string{"new"}) || data["new"] != "hi\n" || hdrs["new"].Uid != 0 {
		t.Errorf("archive of /new: %q %q", names, data)
	}
	st, names, _, data = td.archiveOf(t, ref, "/data/")
	if !st.Mode.IsDir() || !slices.Equal(names, []string{"data/", "data/v.txt"}) || data["data/v.txt"] != "vol\n" {
		t.Errorf("archive of the volume: %+v %q", st, names)
	}
	_, names, _, _ = td.archiveOf(t, ref, "/etc")
	if len(names) < 2 || names[0] != "etc/" || !slices.Contains(names, "etc/passwd") {
		t.Errorf("archive of /etc: %q", names)
	}

	// PUT: hostile names are refused, good ones land, owned by root
	// unless asked otherwise.
	hostDir := t.TempDir()
	put := func(dir string, opts ExtractOptions, hdrs ...*tar.Header) error {
		return td.ExtractToContainer(ctx, ref, dir, cfsTarOf(t, hdrs...), opts)
	}
	for _, hdrs := range [][]*tar.Header{
		{{Typeflag: tar.TypeReg, Name: "../../../../../../.." + hostDir + "/escaped"}},
		{{Typeflag: tar.TypeReg, Name: "a/../../escaped"}},
		{{Typeflag: tar.TypeSymlink, Name: "up", Linkname: "../../../../../.." + hostDir}, {Typeflag: tar.TypeReg, Name: "up/escaped"}},
		{{Typeflag: tar.TypeLink, Name: "hl", Linkname: "../etc/passwd"}},
	} {
		if err := put("/tmp", ExtractOptions{}, hdrs...); !errdefs.IsInvalidArgument(err) {
			t.Errorf("extract %s -> %s: %v, want invalid argument", hdrs[len(hdrs)-1].Name, hdrs[len(hdrs)-1].Linkname, err)
		}
	}
	if entries, _ := os.ReadDir(hostDir); len(entries) != 0 {
		t.Errorf("extraction wrote on the host: %v", entries)
	}
	if err := put("/tmp", ExtractOptions{NoOverwriteDirNonDir: true},
		&tar.Header{Typeflag: tar.TypeReg, Name: "root.txt", Uid: 1234, Gid: 1234},
		&tar.Header{Typeflag: tar.TypeSymlink, Name: "etclink", Linkname: "/etc"},
		&tar.Header{Typeflag: tar.TypeReg, Name: "etclink/put.conf"},
	); err != nil {
		t.Fatalf("extract into /tmp: %v", err)
	}
	if err := put("/data", ExtractOptions{CopyUIDGID: true}, &tar.Header{Typeflag: tar.TypeReg, Name: "kept.txt", Uid: 1234, Gid: 1234}); err != nil {
		t.Fatalf("extract into the volume: %v", err)
	}
	_, _, hdrs, _ = td.archiveOf(t, ref, "/tmp/root.txt")
	if h := hdrs["root.txt"]; h == nil || h.Uid != 0 || h.Gid != 0 {
		t.Errorf("extracted file's owner: %+v", h)
	}
	_, _, hdrs, _ = td.archiveOf(t, ref, "/data/kept.txt")
	if h := hdrs["kept.txt"]; h == nil || h.Uid != 1234 {
		t.Errorf("extracted file's owner with CopyUIDGID: %+v", h)
	}
	if _, err := td.StatContainerPath(ctx, ref, "/etc/put.conf"); err != nil {
		t.Errorf("a file through a symlink of the archive is not in the container: %v", err)
	}
	v, err := td.Container(ctx, ref, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(v.Mounts[0].Source, "kept.txt")); err != nil {
		t.Errorf("the file extracted into /data is not in the volume: %v", err)
	}
	if err := put("/", ExtractOptions{NoOverwriteDirNonDir: true}, &tar.Header{Typeflag: tar.TypeReg, Name: "bin"}); !errdefs.IsConflict(err) ||
		!strings.Contains(err.Error(), `cannot overwrite directory "/bin" with non-directory "/"`) {
		t.Errorf("file over /bin: %v", err)
	}
	if err := put("/new", ExtractOptions{}, &tar.Header{Typeflag: tar.TypeReg, Name: "x"}); !errdefs.IsInvalidArgument(err) ||
		!strings.HasPrefix(err.Error(), "extraction point is not a directory") {
		t.Errorf("extract into a file: %v", err)
	}
	if err := put("/nowhere", ExtractOptions{}, &tar.Header{Typeflag: tar.TypeReg, Name: "x"}); !errdefs.IsNotFound(err) ||
		!strings.HasPrefix(err.Error(), "Could not find the file /nowhere in container") {
		t.Errorf("extract into a missing directory: %v", err)
	}
}

// layerEntries reads the entries of the top layer of the image ref.
func (td *testDaemon) layerEntries(t *testing.T, ref string) []string {
	t.Helper()
	ctx := ctxT(t)
	img, err := td.imgs.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	m, err := td.imgs.Manifest(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	f, err := td.content.Open(ctx, m.Layers[len(m.Layers)-1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	names, _, _ := cfsTarEntries(t, zr)
	return names
}

// events returns the container events with action since start.
func (td *testDaemon) cfsEvents(start time.Time, action string) []Event {
	past, sub := td.events.Subscribe(start)
	sub.Close()
	return slices.DeleteFunc(past, func(ev Event) bool { return ev.Action != action })
}

func TestContainerFSRunning(t *testing.T) {
	td := newTestDaemon(t)
	ctx := ctxT(t)
	start := time.Now()
	id := td.fsContainer(t, "fs", fsScript+"; exec sleep 1000", nil)
	if err := td.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	td.checkCommonFS(t, "fs")

	var buf bytes.Buffer
	if err := td.ExportContainer(ctx, "fs", &buf); err != nil {
		t.Fatalf("export: %v", err)
	}
	names, _, data := cfsTarEntries(t, &buf)
	if data["new"] != "hi\n" || slices.Contains(names, "bin/ls") || !slices.Contains(names, "bin/sh") || slices.Contains(names, "data/v.txt") {
		t.Errorf("export: new=%q, %d entries", data["new"], len(names))
	}
	if evs := td.cfsEvents(start, "export"); len(evs) != 1 || evs[0].ID != id {
		t.Errorf("export events: %+v", evs)
	}

	imgID, err := td.CommitContainer(ctx, "fs", CommitContainerOptions{Reference: "committed", Comment: "a snapshot", Author: "tester", Pause: true})
	if err != nil || !strings.HasPrefix(imgID, "sha256:") {
		t.Fatalf("commit: %q %v", imgID, err)
	}
	if v, _ := td.Container(ctx, id, false); v.State.Status != api.StateRunning {
		t.Errorf("after a pausing commit the container is %s", v.State.Status)
	}
	det, err := td.InspectImage(ctx, "committed:latest")
	if err != nil || det.ID.String() != imgID {
		t.Fatalf("inspect committed image: %v", err)
	}
	if cfg := det.Config.Config; !slices.Equal(cfg.Cmd, []string{"sh", "-c", fsScript + "; exec sleep 1000"}) || cfg.Labels["test"] != "containerfs" {
		t.Errorf("committed config: %+v", cfg)
	}
	if _, ok := det.Config.Config.Volumes["/data"]; !ok {
		t.Errorf("committed config lacks the volume: %+v", det.Config.Config.Volumes)
	}
	if h := det.Config.History[len(det.Config.History)-1]; h.Comment != "a snapshot" || h.Author != "tester" || !strings.HasPrefix(h.CreatedBy, "sh -c echo vol") {
		t.Errorf("committed history: %+v", h)
	}
	layer := td.layerEntries(t, "committed")
	for _, want := range []string{"new", "bin/.wh.ls", "tmp/root.txt"} {
		if !slices.Contains(layer, want) {
			t.Errorf("committed layer lacks %s: %q", want, layer)
		}
	}
	for _, p := range layer {
		if strings.HasPrefix(p, "data/") && p != "data/" {
			t.Errorf("committed layer has the volume's content %s", p)
		}
	}
	if evs := td.cfsEvents(start, "commit"); len(evs) != 1 || evs[0].Attributes["comment"] != "a snapshot" || evs[0].Attributes["imageID"] != imgID ||
		evs[0].Attributes["imageRef"] != "committed:latest" {
		t.Errorf("commit events: %+v", evs)
	}
	child := td.create(t, "child", &api.Config{Image: "committed"}, nil)
	if _, err := td.StatContainerPath(ctx, child, "/new"); err != nil {
		t.Errorf("a container of the committed image lacks /new: %v", err)
	}
	if _, err := td.StatContainerPath(ctx, child, "/bin/ls"); !errdefs.IsNotFound(err) {
		t.Errorf("a container of the committed image has /bin/ls: %v", err)
	}

	// The container is not left locked: it stops.
	zero := 0
	if err := td.StopContainer(ctx, id, StopOptions{Timeout: &zero}); err != nil {
		t.Errorf("stop after cp: %v", err)
	}
}

func TestContainerFSStopped(t *testing.T) {
	td := newTestDaemon(t)
	ctx := ctxT(t)
	id := td.fsContainer(t, "fs", fsScript, nil)
	if r := td.startAndWait(t, id, api.WaitConditionNextExit); r.ExitCode != 0 {
		t.Fatalf("the script failed: %+v", r)
	}
	td.checkCommonFS(t, "fs")
	got, err := td.ContainerChanges(ctx, "fs")
	want := fsChangesAfterCp
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("changes after cp:\n got %v\nwant %v (%v)", got, want, err)
	}

	// An archive keeps the stopped container's layer mounted until it is
	// closed; then nothing is left.
	rc, _, err := td.ContainerArchive(ctx, "fs", "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, rc, 512); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(td.cfg.ExecRoot, "containerfs-*")); len(left) != 1 {
		t.Errorf("temporary mounts during an archive: %q", left)
	}
	rc.Close()
	if left, _ := filepath.Glob(filepath.Join(td.cfg.ExecRoot, "containerfs-*")); len(left) != 0 {
		t.Errorf("temporary mounts left: %q", left)
	}

	var buf bytes.Buffer
	if err := td.ExportContainer(ctx, id, &buf); err != nil {
		t.Fatalf("export: %v", err)
	}
	if names, _, _ := cfsTarEntries(t, &buf); !slices.Contains(names, "new") || !slices.Contains(names, "tmp/root.txt") {
		t.Errorf("export lacks new or tmp/root.txt: %d entries", len(names))
	}
	if _, err := td.CommitContainer(ctx, id, CommitContainerOptions{Pause: true, Changes: []string{"ENV COMMITTED=1"}}); err != nil {
		t.Errorf("commit of a stopped container: %v", err)
	}

	// A read-only root file system takes files in its volumes only, and a
	// read-only bind none.
	ro := td.fsContainer(t, "ro", "true", &api.HostConfig{ReadonlyRootfs: true, Binds: []string{t.TempDir() + ":/robind:ro"}})
	err = td.ExtractToContainer(ctx, ro, "/robind", cfsTarOf(t, &tar.Header{Typeflag: tar.TypeReg, Name: "x"}), ExtractOptions{})
	if !errdefs.IsInvalidArgument(err) || !strings.HasPrefix(err.Error(), "mounted volume is marked read-only") {
		t.Errorf("extract into a read-only bind: %v", err)
	}
	err = td.ExtractToContainer(ctx, ro, "/tmp", cfsTarOf(t, &tar.Header{Typeflag: tar.TypeReg, Name: "x"}), ExtractOptions{})
	if !errdefs.IsInvalidArgument(err) || !strings.HasPrefix(err.Error(), "container rootfs is marked read-only") {
		t.Errorf("extract into a read-only root: %v", err)
	}
	if err := td.ExtractToContainer(ctx, ro, "/data", cfsTarOf(t, &tar.Header{Typeflag: tar.TypeReg, Name: "x"}), ExtractOptions{}); err != nil {
		t.Errorf("extract into the volume of a read-only root: %v", err)
	}
	// It runs fine after the cp made its mount point.
	if r := td.startAndWait(t, ro, api.WaitConditionNextExit); r.ExitCode != 0 {
		t.Errorf("run after cp: %+v", r)
	}
}

func TestPruneContainers(t *testing.T) {
	td := newTestDaemon(t)
	ctx := ctxT(t)
	start := time.Now()
	running := td.create(t, "running", &api.Config{Cmd: []string{"sleep", "1000"}}, nil)
	created := td.create(t, "created", &api.Config{Cmd: []string{"true"}}, nil)
	exited := td.create(t, "exited", &api.Config{Cmd: []string{"sh", "-c", "head -c 100000 /dev/zero > /big"}}, nil)
	labelled := td.create(t, "labelled", &api.Config{Cmd: []string{"true"}, Labels: map[string]string{"prune": "me"}}, nil)
	for _, id := range []string{running, exited, labelled} {
		if err := td.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{exited, labelled} {
		ch, err := td.WaitContainer(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, ch)
	}

	if _, err := td.PruneContainers(ctx, map[string][]string{"name": {"x"}}); !errdefs.IsInvalidArgument(err) || !strings.HasPrefix(err.Error(), "invalid filter 'name'") {
		t.Errorf("prune with a bad filter: %v", err)
	}
	rep, err := td.PruneContainers(ctx, map[string][]string{"until": {"2000-01-01"}})
	if err != nil || len(rep.Deleted) != 0 {
		t.Errorf("prune until 2000: %+v %v", rep, err)
	}
	rep, err = td.PruneContainers(ctx, map[string][]string{"label": {"prune=me"}})
	if err != nil || !slices.Equal(rep.Deleted, []string{labelled}) {
		t.Errorf("prune label=prune=me: %+v %v", rep, err)
	}
	rep, err = td.PruneContainers(ctx, map[string][]string{"label!": {"prune"}, "until": {"1m"}})
	if err != nil || len(rep.Deleted) != 0 {
		t.Errorf("prune of containers older than a minute: %+v %v", rep, err)
	}
	rep, err = td.PruneContainers(ctx, nil)
	slices.Sort(rep.Deleted)
	want := []string{created, exited}
	slices.Sort(want)
	if err != nil || !slices.Equal(rep.Deleted, want) || rep.SpaceReclaimed < 100000 {
		t.Errorf("prune: %+v %v, want %v and at least 100000 bytes", rep, err, want)
	}
	list, err := td.Containers(ctx, ListContainersOptions{All: true})
	if err != nil || len(list) != 1 || list[0].ID != running {
		t.Errorf("containers after prune: %d %v", len(list), err)
	}
	evs := td.cfsEvents(start, "prune")
	if len(evs) != 4 || evs[3].Type != "container" || evs[3].Attributes["reclaimed"] != strconv.FormatUint(rep.SpaceReclaimed, 10) {
		t.Errorf("prune events: %+v", evs)
	}
}

// TestContainerFSNative runs the checks on the native driver, whose diff
// compares full trees and whose layers are bind mounts.
func TestContainerFSNative(t *testing.T) {
	td := newTestDaemon(t, nativeStorage)
	if td.StorageDriver() != DriverNative {
		t.Fatalf("storage driver %s", td.StorageDriver())
	}
	ctx := ctxT(t)
	id := td.fsContainer(t, "fs", fsScript+"; exec sleep 1000", nil)
	if err := td.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	td.checkCommonFS(t, "fs")
	if _, err := td.CommitContainer(ctx, "fs", CommitContainerOptions{Reference: "native-commit", Pause: true}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if layer := td.layerEntries(t, "native-commit"); !slices.Contains(layer, "new") || !slices.Contains(layer, "bin/.wh.ls") {
		t.Errorf("committed layer: %q", layer)
	}
	zero := 0
	if err := td.StopContainer(ctx, id, StopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	st, names, _, data := td.archiveOf(t, "fs", "/data/v.txt")
	if st.Size != 4 || !slices.Equal(names, []string{"v.txt"}) || data["v.txt"] != "vol\n" {
		t.Errorf("archive of the stopped container's volume: %+v %q", st, names)
	}
	got, err := td.ContainerChanges(ctx, "fs")
	if err != nil || !reflect.DeepEqual(got, fsChangesAfterCp) {
		t.Errorf("changes of the stopped container:\n got %v\nwant %v (%v)", got, fsChangesAfterCp, err)
	}
}
