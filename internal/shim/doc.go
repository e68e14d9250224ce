// Package shim is berth-shim, the supervisor of one container, and the
// client berthd uses to talk to it.
//
// A shim is started by the daemon (Start) as a new session. It becomes a
// child subreaper, sets up the container's stdio and its socket, and on
// the start call runs `berth-runtime run --detach` (create and start in one
// program start); from then on it is the container's parent: it reaps
// init and the exec'd processes, keeps their stdio (json-file log, attach
// streams, pty), records the exit status in the state dir and serves a
// small RPC on a unix socket there. It never depends on the daemon: it
// writes its own log, drops attachers that do not keep up, and keeps
// running when the daemon dies; the daemon comes back with Connect.
//
// # State dir
//
//	<state-dir>/shim.sock     RPC socket, mode 0600, removed when the shim exits
//	<state-dir>/shim.log      the shim's own stderr (its slog output)
//	<state-dir>/exit.json     ExitStatus, written atomically when init exits
//	<state-dir>/init.pid      init's pid (the runtime's --pid-file)
//	<state-dir>/console.sock  pty master hand-over during start (--tty)
//
// # Start handshake
//
// The starter passes the write end of a pipe as fd 3 (--ready-fd). The shim
// writes one JSON object to it and closes it: {"ready":true} once the
// socket listens and the container's stdio is ready, or
// {"error":"...","class":"..."} after it undid everything. EOF without an
// object means the shim died; see shim.log. A starter that gives up sends
// SIGTERM: the shim stops and answers with an error. After the handshake
// the shim ignores SIGTERM and SIGINT; it exits after Delete.
//
// The container does not exist before the start call, so that attachers
// can connect to its streams first and miss nothing. Start makes it, runs
// it and answers once its process runs (or with the runtime's own error
// text; the runtime has then removed what it made). Until then State says
// "created" with no pid, and Delete just ends the shim.
//
//	daemon                          berth-shim                     berth-runtime
//	     │ fork+exec, setsid, fd 3 ──▶ │ subreaper, listen shim.sock, stdio pipes
//	     │ ◀──── {"ready":true}, EOF ──│
//	     │ attach (streams) ─────────▶ │
//	     │ start ────────────────────▶ │ run --detach --pid-file ... ──▶ │ create, start
//	     │                             │ ◀──────── pty master (SCM_RIGHTS, with --tty)
//	     │                             │ ◀──────────────────────── exit 0 (or error in --log)
//	     │ ◀──────────────────── {} ── │ copy stdio to log and attachers
//	     │ state, wait, ... ─────────▶ │ serve RPC until Delete
//
// # Exit
//
// When init exits the shim writes exit.json, ends the container's streams
// and at once runs `berth-runtime delete` (a stopped container is never
// started again: a restart is a new shim), overlapping the removal with the
// daemon's handling of the exit; the Delete call then only finds it done.
// After answering Delete the shim stops serving and removes its socket,
// but lets its attachers take the rest of the output (at most 2 s) before
// it exits; a client lets go of a deleted shim with Release, which leaves
// its streams to end that way, where Close would cut them.
//
// # RPC
//
// One connection per call. The client sends one request frame, the shim
// answers with one response frame. A frame is a 4-byte big-endian length
// followed by that many bytes of JSON (request and response below). Wait
// calls hold their connection until the process exits; closing it cancels
// the wait. Attach calls (for the container or an exec, one stream per
// connection) keep their connection after a successful response, and it
// becomes a raw byte stream in one direction: stdout/stderr from the shim
// until the process exited and its output drained (then EOF), stdin to the
// shim until the client shuts down its write side.
//
//	client                                   shim
//	  │ connect ──────────────────────────────▶ │ accept
//	  │ [len u32 BE][{"method":"wait"}] ──────▶ │
//	  │ ◀────────── [len u32 BE][{"exit":{..}}] │ (error: {"error":"..","class":"conflict"})
//	  │ close                                   │
//
//	  │ [len][{"method":"attach","stream":"stdout"}] ──▶ │
//	  │ ◀──────────────────────────── [len][{}]          │
//	  │ ◀══════ raw output bytes ══════ ... EOF          │ (bounded queue: a slow
//	                                                       attacher is dropped)
//
// The methods (request "method"; "exec" names an exec'd process, empty
// for the container's init): state, start, wait, kill {signal, all},
// pause, resume, attach {stream: stdin|stdout|stderr, stdinOnce}, resize
// {width, height}, close-stdin, delete, exec {process, stdin},
// exec-start, exec-state, exec-kill {signal}, exec-delete.
//
// Exec is three steps so that no output is lost: "exec" registers the
// process and its pipes, the client attaches its streams, "exec-start"
// runs `berth-runtime exec --detach` and returns the pid.
package shim
