package oci

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxID is the largest uid or gid Docker accepts.
const maxID = 1<<31 - 1

// maxRootfsFile bounds what is read of /etc/passwd and /etc/group: those of
// any real image are far smaller.
const maxRootfsFile = 16 << 20

// passwdEntry and groupEntry are the fields of /etc/passwd and /etc/group
// lines that user resolution needs.
type passwdEntry struct {
	name     string
	uid, gid int
}

type groupEntry struct {
	name    string
	gid     int
	members []string
}

// resolveUser returns the process user for Docker's --user value spec
// ("", "uid", "name", "uid:gid", "name:group", ...) and --group-add values,
// looking names up in rootfs's /etc/passwd and /etc/group (read inside the
// rootfs: a symlink cannot lead out of it). Without an explicit group the
// primary group comes from the user's passwd entry and the supplementary
// groups are those listing the user as a member. A missing file is only an
// error when a name has to be looked up in it.
func resolveUser(rootfs, spec string, groupAdd []string) (specs.User, error) {
	userArg, groupArg, _ := strings.Cut(spec, ":")
	uidArg, uidErr := strconv.Atoi(userArg)
	gidArg, gidErr := strconv.Atoi(groupArg)

	users, err := readPasswd(rootfs)
	if err != nil {
		return specs.User{}, err
	}

	// Root by default; a user found in passwd brings its uid and gid.
	u := passwdEntry{name: "", uid: 0, gid: 0}
	found := false
	for _, e := range users {
		var match bool
		switch {
		case userArg == "":
			match = e.uid == 0
		case uidErr == nil:
			match = e.uid == uidArg
		default:
			match = e.name == userArg
		}
		if match {
			u, found = e, true
			break
		}
	}
	if !found {
		switch {
		case userArg == "":
		case uidErr != nil:
			return specs.User{}, invalidf("unable to find user %s: no matching entries in passwd file", userArg)
		case uidArg < 0 || uidArg > maxID:
			return specs.User{}, invalidf("uids and gids must be in range 0-%d", maxID)
		default:
			u.uid = uidArg
		}
	}

	var groups []groupEntry
	if groupArg != "" || u.name != "" || len(groupAdd) > 0 {
		var err error
		if groups, err = readGroup(rootfs); err != nil {
			return specs.User{}, err
		}
	}
	var sgids []uint32
	if groupArg != "" {
		found := false
		for _, g := range groups {
			if (gidErr == nil && g.gid == gidArg) || (gidErr != nil && g.name == groupArg) {
				u.gid, found = g.gid, true
				break
			}
		}
		if !found {
			if gidErr != nil {
				return specs.User{}, invalidf("unable to find group %s: no matching entries in group file", groupArg)
			}
			if gidArg < 0 || gidArg > maxID {
				return specs.User{}, invalidf("uids and gids must be in range 0-%d", maxID)
			}
			u.gid = gidArg
		}
	} else if u.name != "" {
		for _, g := range groups {
			for _, m := range g.members {
				if m == u.name {
					sgids = appendGid(sgids, g.gid)
					break
				}
			}
		}
	}

	// --group-add: a group name or gid from /etc/group, or a bare number.
	for _, ag := range groupAdd {
		found := false
		for _, g := range groups {
			if g.name == ag || strconv.Itoa(g.gid) == ag {
				sgids, found = appendGid(sgids, g.gid), true
				break
			}
		}
		if found {
			continue
		}
		gid, err := strconv.ParseInt(ag, 10, 64)
		if err != nil {
			return specs.User{}, invalidf("unable to find group %s: no matching entries in group file", ag)
		}
		if gid < 0 || gid > maxID {
			return specs.User{}, invalidf("uids and gids must be in range 0-%d", maxID)
		}
		sgids = appendGid(sgids, int(gid))
	}
	// The primary group is a supplementary group too, as Docker sets it
	// (id shows groups=1000(berth); with --group-add, groups=0(root),5(tty)).
	sgids = append([]uint32{uint32(u.gid)}, slices.DeleteFunc(sgids, func(g uint32) bool { return g == uint32(u.gid) })...)
	return specs.User{UID: uint32(u.uid), GID: uint32(u.gid), AdditionalGids: sgids}, nil
}

func appendGid(list []uint32, gid int) []uint32 {
	for _, g := range list {
		if g == uint32(gid) {
			return list
		}
	}
	return append(list, uint32(gid))
}

// readPasswd returns the entries of rootfs's /etc/passwd, none if it does
// not exist.
func readPasswd(rootfs string) ([]passwdEntry, error) {
	data, err := readOptional(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	var out []passwdEntry
	for _, f := range splitLines(data) {
		if len(f) < 4 {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid})
	}
	return out, nil
}

// readGroup returns the entries of rootfs's /etc/group, none if it does
// not exist.
func readGroup(rootfs string) ([]groupEntry, error) {
	data, err := readOptional(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	var out []groupEntry
	for _, f := range splitLines(data) {
		if len(f) < 3 {
			continue
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	}
	return out, nil
}

// readOptional reads path inside rootfs; a missing file reads as empty.
func readOptional(rootfs, path string) ([]byte, error) {
	data, err := readInRoot(rootfs, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, invalidf("read %s of the container: %v", path, err)
	}
	return data, nil
}

// splitLines returns the colon-separated fields of each non-empty,
// non-comment line.
func splitLines(data []byte) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxRootfsFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
