package mountopt

import (
	"strings"

	"golang.org/x/sys/unix"
)

// flag is the effect of one option word on the mount flags.
type flag struct {
	clear bool
	flag  uintptr
}

var flags = map[string]flag{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"symfollow":     {true, unix.MS_NOSYMFOLLOW},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

var propagation = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// Parsed is a list of option words split for mount(2).
type Parsed struct {
	// Flags are the mount flags, later words overriding earlier ones
	// ("ro,rw" is read-write).
	Flags uintptr
	// Propagation are the propagation changes, in order, each a separate
	// mount(2) call after the mount.
	Propagation []uintptr
	// Data are the other words, comma-joined, for the filesystem.
	Data string
}

// Parse splits options.
func Parse(options []string) Parsed {
	var p Parsed
	var data []string
	for _, o := range options {
		if f, ok := flags[o]; ok {
			if f.clear {
				p.Flags &^= f.flag
			} else {
				p.Flags |= f.flag
			}
			continue
		}
		if f, ok := propagation[o]; ok {
			p.Propagation = append(p.Propagation, f)
			continue
		}
		data = append(data, o)
	}
	p.Data = strings.Join(data, ",")
	return p
}

// Propagation returns the flags of a propagation word ("rslave"); ok is
// false for any other word.
func Propagation(word string) (f uintptr, ok bool) {
	f, ok = propagation[word]
	return f, ok
}

// Known reports whether word is a flag or propagation word.
func Known(word string) bool {
	_, isFlag := flags[word]
	_, isProp := propagation[word]
	return isFlag || isProp
}

// Words lists every flag and propagation word.
func Words() []string {
	out := make([]string, 0, len(flags)+len(propagation))
	for w := range flags {
		out = append(out, w)
	}
	for w := range propagation {
		out = append(out, w)
	}
	return out
}
