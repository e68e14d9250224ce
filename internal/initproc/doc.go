// Package initproc is berth-init, the minimal init that `docker run --init`
// bind-mounts read-only at /sbin/berth-init and runs as the container's
// PID 1 in front of the user's command.
//
// A process at PID 1 of a pid namespace has two jobs the kernel gives no
// one else: the kernel drops signals sent to it for which it installed no
// handler, and every orphan of the namespace is re-parented to it and stays
// a zombie until it waits for it. Most programs do neither, so Run does
// both on their behalf:
//
//	berth-init (PID 1)                     the command (own process group)
//	  lookPath, fork+exec ─────────────────▶ runs; foreground of the tty
//	  catchable signal ── kill(child) ─────▶ handles or dies by it
//	  SIGCHLD ── wait4(-1, WNOHANG) ◀─────── orphans and the child exit
//	  child gone ── exit(code | 128+sig)
//
// The child is started in a process group of its own; when stdin is the
// terminal whose foreground group berth-init is in, the child's group gets
// the foreground, so that Ctrl-C at a `docker run -it` reaches it. Signals
// are forwarded to the child's pid, not its group. Once the child is gone
// berth-init exits at once with its status, even if grandchildren remain:
// they die with the pid namespace. Outside PID 1 it makes itself a child
// subreaper so that it still reaps the orphans of its subtree.
//
// Exit codes follow the shell: the child's own status, 128+n when the
// child was killed by signal n, 127 when the command is not found and 126
// when it is found but cannot be executed.
package initproc
