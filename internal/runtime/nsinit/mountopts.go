package nsinit

import (
	"strings"

	"golang.org/x/sys/unix"
)

// mountOpt is the effect of one mount option word.
type mountOpt struct {
	clear bool
	flag  uintptr
}

var mountOpts = map[string]mountOpt{
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

var propagationOpts = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parsedMount is a spec mount's options split into what mount(2) takes.
type parsedMount struct {
	flags       uintptr
	propagation []uintptr
	data        string
	// recursiveRO is "rro": read-only applied to every submount.
	recursiveRO bool
	// copyUp is "tmpcopyup": a tmpfs starts with a copy of what it covers.
	copyUp bool
}

// parseMountOptions splits OCI mount options into flags, propagation changes
// and the filesystem-specific data string.
func parseMountOptions(options []string) parsedMount {
	var pm parsedMount
	var data []string
	for _, o := range options {
		if opt, ok := mountOpts[o]; ok {
			if opt.clear {
				pm.flags &^= opt.flag
			} else {
				pm.flags |= opt.flag
			}
			continue
		}
		if p, ok := propagationOpts[o]; ok {
			pm.propagation = append(pm.propagation, p)
			continue
		}
		switch o {
		case "rro":
			pm.recursiveRO = true
			continue
		case "tmpcopyup":
			pm.copyUp = true
			continue
		case "rrw":
			continue
		}
		data = append(data, o)
	}
	pm.data = strings.Join(data, ",")
	return pm
}

// PropagationFlags maps a rootfsPropagation value to mount flags; ok is
// false for an unknown value.
func PropagationFlags(s string) (uintptr, bool) {
	f, ok := propagationOpts[s]
	return f, ok
}

// MountOptionNames lists every mount option word init understands.
func MountOptionNames() map[string]bool {
	out := map[string]bool{"rro": true, "rrw": true, "tmpcopyup": true}
	for k := range mountOpts {
		out[k] = true
	}
	for k := range propagationOpts {
		out[k] = true
	}
	return out
}
