package mountopt

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	got := Parse([]string{"rbind", "ro", "nosuid", "rslave", "size=64m", "rw", "mode=755", "private"})
	want := Parsed{
		Flags:       unix.MS_BIND | unix.MS_REC | unix.MS_NOSUID,
		Propagation: []uintptr{unix.MS_SLAVE | unix.MS_REC, unix.MS_PRIVATE},
		Data:        "size=64m,mode=755",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse = %+v, want %+v", got, want)
	}
	if f, ok := Propagation("rshared"); !ok || f != unix.MS_SHARED|unix.MS_REC {
		t.Errorf("Propagation(rshared) = %#x, %v", f, ok)
	}
	if _, ok := Propagation("ro"); ok {
		t.Error("ro is no propagation word")
	}
	if !Known("noexec") || !Known("runbindable") || Known("size=1") {
		t.Error("Known is wrong")
	}
	if len(Words()) != len(flags)+len(propagation) {
		t.Errorf("Words lists %d words", len(Words()))
	}
}
