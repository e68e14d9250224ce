package cli

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
)

func summary() container.Summary {
	return container.Summary{
		ID:      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Names:   []string{"/web", "/other/alias"},
		Image:   "busybox",
		ImageID: "sha256:aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999",
		Command: "sh -c 'while true; do sleep 1; done'",
		Created: time.Now().Add(-3 * time.Minute).Unix(),
		Ports: []container.PortSummary{
			{IP: netip.MustParseAddr("0.0.0.0"), PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
			{PrivatePort: 443, Type: "tcp"},
		},
		Labels: map[string]string{"b": "2", "a": "1"},
		State:  "running",
		Status: "Up 3 minutes",
	}
}

func TestPsTable(t *testing.T) {
	var buf bytes.Buffer
	f := Formatter{DefaultTable: defaultPsTable, Headers: psHeaders}
	if err := f.Write(&buf, []any{&ContainerRow{c: summary(), trunc: true}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("table:\n%s", buf.String())
	}
	for _, h := range []string{"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"} {
		if !strings.Contains(lines[0], h) {
			t.Errorf("header lacks %q: %q", h, lines[0])
		}
	}
	// Columns line up: every header starts where its value starts.
	if col := func(line, s string) int { return utf8.RuneCountInString(line[:strings.Index(line, s)]) }; col(lines[0], "NAMES") != col(lines[1], " web")+1 {
		t.Errorf("columns not aligned:\n%s", buf.String())
	}
	for _, want := range []string{"0123456789ab ", `"sh -c 'while true; …"`, "3 minutes ago", "443/tcp, 0.0.0.0:8080->80/tcp", " web"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row lacks %q: %q", want, lines[1])
		}
	}
	if strings.Contains(lines[1], "alias") {
		t.Errorf("a link name is shown without --no-trunc: %q", lines[1])
	}
}

func TestPsFormats(t *testing.T) {
	row := &ContainerRow{c: summary(), trunc: false}
	for _, tc := range []struct{ format, want string }{
		{"{{.ID}}", summary().ID + "\n"},
		{"{{.Names}}", "web,other/alias\n"},
		{"{{.Labels}}", "a=1,b=2\n"},
		{`{{.Label "b"}}`, "2\n"},
		{"table {{.Names}}\t{{.State}}", "NAMES             STATE\nweb,other/alias   running\n"},
		{`{{join .Names ","}}`, ""}, // .Names is a string: join fails
	} {
		var buf bytes.Buffer
		err := Formatter{Format: tc.format, DefaultTable: defaultPsTable, Headers: psHeaders}.Write(&buf, []any{row})
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: no error, got %q", tc.format, buf.String())
			}
			continue
		}
		if err != nil || buf.String() != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.format, buf.String(), err, tc.want)
		}
	}
	var buf bytes.Buffer
	if err := (Formatter{Format: "json"}).Write(&buf, []any{row}); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("json row %q: %v", buf.String(), err)
	}
	for _, k := range []string{"Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names", "Networks", "Platform", "Ports", "RunningFor", "Size", "State", "Status"} {
		if _, ok := m[k]; !ok {
			t.Errorf("json row lacks %s: %s", k, buf.String())
		}
	}
	if _, ok := m["Label"]; ok {
		t.Errorf("json row has a method with arguments: %s", buf.String())
	}
	buf.Reset()
	if err := (Formatter{Quiet: true, QuietTemplate: "{{.ID}}", Format: "{{.Names}}"}).Write(&buf, []any{row}); err != nil || buf.String() != summary().ID+"\n" {
		t.Errorf("quiet: %q %v", buf.String(), err)
	}
}

func TestMalformedTemplate(t *testing.T) {
	for _, format := range []string{"{{.ID", "{{nosuchfunc .}}", "table {{end}}"} {
		err := Formatter{Format: format}.ParseFormat()
		if err == nil || !strings.Contains(err.Error(), "template parsing error") {
			t.Errorf("%q: %v", format, err)
		}
	}
	// A field that does not exist fails at execution, with an error.
	var buf bytes.Buffer
	if err := (Formatter{Format: "{{.Nope}}"}).Write(&buf, []any{&ContainerRow{c: summary()}}); err == nil {
		t.Errorf("unknown field: no error")
	}
}

func TestDisplayablePorts(t *testing.T) {
	any4 := netip.MustParseAddr("0.0.0.0")
	any6 := netip.MustParseAddr("::")
	for _, tc := range []struct {
		ports []container.PortSummary
		want  string
	}{
		{nil, ""},
		{[]container.PortSummary{{PrivatePort: 80, Type: "tcp"}}, "80/tcp"},
		{[]container.PortSummary{{PrivatePort: 81, Type: "tcp"}, {PrivatePort: 80, Type: "tcp"}, {PrivatePort: 82, Type: "tcp"}, {PrivatePort: 53, Type: "udp"}},
			"53/udp, 80-82/tcp"},
		{[]container.PortSummary{{IP: any4, PrivatePort: 80, PublicPort: 8080, Type: "tcp"}, {IP: any6, PrivatePort: 80, PublicPort: 8080, Type: "tcp"}},
			"0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"},
		{[]container.PortSummary{{IP: any4, PrivatePort: 80, PublicPort: 80, Type: "tcp"}, {IP: any4, PrivatePort: 81, PublicPort: 81, Type: "tcp"}},
			"0.0.0.0:80-81->80-81/tcp"},
	} {
		if got := DisplayablePorts(tc.ports); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.ports, got, tc.want)
		}
	}
}

func TestEllipsis(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{{"short", 20, "short"}, {"abcdefghij", 5, "abcd…"}, {"ünïcödé", 4, "ünï…"}, {"ab", 1, "a"}} {
		if got := Ellipsis(tc.in, tc.max); got != tc.want {
			t.Errorf("Ellipsis(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestImageRows(t *testing.T) {
	img := image.Summary{
		ID:          "sha256:1111111111111111111111111111111111111111111111111111111111111111",
		RepoTags:    []string{"busybox:latest", "busybox:1", "localhost:5000/bb:x"},
		RepoDigests: []string{"busybox@sha256:2222222222222222222222222222222222222222222222222222222222222222", "other@sha256:3333333333333333333333333333333333333333333333333333333333333333"},
		Size:        2_000_000,
		Created:     time.Now().Add(-time.Hour).Unix(),
		Containers:  -1,
		SharedSize:  -1,
	}
	var got []string
	for _, r := range imageRows(img, true, true) {
		got = append(got, r.Repository()+" "+r.Tag()+" "+r.Digest()[:min(len(r.Digest()), 14)]+" "+r.ID())
	}
	want := []string{
		"busybox 1 sha256:2222222 111111111111",
		"busybox latest sha256:2222222 111111111111",
		"localhost:5000/bb x <none> 111111111111",
		"other <none> sha256:3333333 111111111111",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rows := imageRows(image.Summary{ID: img.ID}, false, false)
	if len(rows) != 1 || rows[0].Repository() != "<none>" || rows[0].Tag() != "<none>" || rows[0].ID() != img.ID {
		t.Errorf("untagged image: %+v", rows)
	}
	r := rows[0]
	if r.Size() != "0B" || r.Containers() != "0" || r.CreatedSince() != "N/A" {
		t.Errorf("untagged row: %s %s %s", r.Size(), r.Containers(), r.CreatedSince())
	}
}

func TestStatsRow(t *testing.T) {
	var s container.StatsResponse
	s.ID, s.Name = "0123456789abcdef", "/web"
	s.CPUStats.CPUUsage.TotalUsage, s.PreCPUStats.CPUUsage.TotalUsage = 300, 100
	s.CPUStats.SystemUsage, s.PreCPUStats.SystemUsage = 2000, 1000
	s.CPUStats.OnlineCPUs = 2
	s.MemoryStats.Usage, s.MemoryStats.Limit = 3<<20, 8<<20
	s.MemoryStats.Stats = map[string]uint64{"inactive_file": 1 << 20}
	s.PidsStats.Current = 3
	r := statsRow("web", &s, true)
	for _, tc := range []struct{ got, want string }{
		{r.CPUPerc(), "40.00%"}, {r.MemUsage(), "2MiB / 8MiB"}, {r.MemPerc(), "25.00%"},
		{r.PIDs(), "3"}, {r.Name(), "web"}, {r.ID(), "0123456789ab"}, {r.NetIO(), "0B / 0B"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestWriteInspect(t *testing.T) {
	type obj struct {
		ID    string `json:"Id"`
		State struct{ Pid int }
	}
	o := obj{ID: "abc"}
	o.State.Pid = 1234567890
	raw, _ := json.Marshal(o)
	var buf bytes.Buffer
	if err := WriteInspect(&buf, "", []any{o}, [][]byte{raw}); err != nil {
		t.Fatal(err)
	}
	var back []obj
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back) != 1 || back[0].ID != "abc" {
		t.Errorf("inspect json: %q %v", buf.String(), err)
	}
	// Typed fields first, then the JSON names; big numbers stay integers.
	for format, want := range map[string]string{"{{.ID}}": "abc\n", "{{.Id}}": "abc\n", "{{.State.Pid}}": "1234567890\n", "{{json .State}}": "{\"Pid\":1234567890}\n"} {
		buf.Reset()
		if err := WriteInspect(&buf, format, []any{o}, [][]byte{raw}); err != nil || buf.String() != want {
			t.Errorf("%s: %q %v, want %q", format, buf.String(), err, want)
		}
	}
	buf.Reset()
	if err := WriteInspect(&buf, "", nil, nil); err != nil || buf.String() != "[]\n" {
		t.Errorf("empty inspect: %q %v", buf.String(), err)
	}
	if err := WriteInspect(&buf, "{{.Id", []any{o}, nil); err == nil || !strings.Contains(err.Error(), "template parsing error") {
		t.Errorf("malformed inspect template: %v", err)
	}
}

func TestPruneReport(t *testing.T) {
	var total pruneReport
	total.counted = true
	a := pruneReport{counted: true, space: 2048}
	a.add("Deleted Containers:", []string{"c1", "c2"})
	n := pruneReport{}
	n.add("Deleted Networks:", []string{"net1"})
	e := pruneReport{counted: true}
	e.add("Deleted Images:", nil)
	total.merge(a)
	total.merge(n)
	total.merge(e)
	var buf bytes.Buffer
	total.print(&buf)
	want := "Deleted Containers:\nc1\nc2\n\nDeleted Networks:\nnet1\n\nTotal reclaimed space: 2.048kB\n"
	if buf.String() != want {
		t.Errorf("system prune report:\n%q\nwant\n%q", buf.String(), want)
	}
	buf.Reset()
	n.print(&buf)
	if buf.String() != "Deleted Networks:\nnet1\n" {
		t.Errorf("network prune report: %q", buf.String())
	}
}
