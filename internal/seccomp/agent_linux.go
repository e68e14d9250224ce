package seccomp

import (
	"encoding/json"
	"fmt"
	"github.com/berth-project/berth/internal/unixsock"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// SendListener hands a seccomp listener fd (from Load) to the seccomp agent
// listening on the AF_UNIX SOCK_STREAM socket listenerPath, as the OCI
// runtime specification describes: one connection, one message carrying the
// container process state as JSON and the fd as SCM_RIGHTS, then close.
//
// st.Fds is set to ["seccompFd"] (the name of the one fd sent) and an empty
// st.Version to the specification version; the caller fills in Pid, Metadata
// (the config's listenerMetadata) and State. A listenerPath starting with
// "@" names an abstract socket. fd stays open: the caller closes it.
func SendListener(listenerPath string, st specs.ContainerProcessState, fd int) error {
	if listenerPath == "" {
		return invalidf("seccomp: send listener: empty listenerPath")
	}
	if fd < 0 {
		return invalidf("seccomp: send listener: invalid fd %d", fd)
	}
	st.Fds = []string{specs.SeccompFdName}
	if st.Version == "" {
		st.Version = specs.Version
	}
	msg, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("seccomp: encode container process state: %w", err)
	}
	conn, err := unixsock.Dial(listenerPath)
	if err != nil {
		return fmt.Errorf("seccomp: connect to seccomp agent %q: %w", listenerPath, err)
	}
	defer conn.Close()
	var n int
	for {
		n, err = unix.SendmsgN(int(conn.Fd()), msg, unix.UnixRights(fd), nil, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("seccomp: send listener to seccomp agent %q: %w", listenerPath, err)
	}
	// A stream socket may take part of a large state in the first
	// sendmsg; the rest follows without fds, as the specification allows.
	if n < len(msg) {
		if _, err := conn.Write(msg[n:]); err != nil {
			return fmt.Errorf("seccomp: send container process state to seccomp agent %q: %w", listenerPath, err)
		}
	}
	if err := conn.Close(); err != nil {
		return fmt.Errorf("seccomp: close connection to seccomp agent %q: %w", listenerPath, err)
	}
	return nil
}
