//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// throughputBytes is what one port-throughput round sends: 1 GiB.
const throughputBytes = 1 << 30

// throughput runs one port-throughput round on e: a container running
// busybox nc in a loop behind a published port (-p 127.0.0.1::5000), handing
// each connection to dd with 1 MiB reads (nc's own small buffer would be
// the bottleneck of both engines), 1 GiB
// written to it from the host through 127.0.0.1, timed from connect until
// the listener closed the connection (it has read everything by then).
// Docker's dockerd runs without iptables here, so its published ports
// are served by its userland proxy (docker-proxy); berth's by DNAT.
func (b *bench) throughput(ctx context.Context, e *engine, res *result, record bool) error {
	ctx, cancel := context.WithTimeout(ctx, 5*b.opts.timeout)
	defer cancel()
	out, err := e.cli.Run(ctx, "run", "-d", "--label", b.label, "-p", "127.0.0.1::5000", imageRef,
		"sh", "-c", "while :; do nc -l -p 5000 -e dd of=/dev/null bs=1M 2>/dev/null; done")
	if err != nil {
		return err
	}
	id := strings.TrimSpace(string(out))
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeTimeout)
		defer cancel()
		e.api.remove(rctx, id, true)
	}()
	out, err = e.cli.Run(ctx, "port", id, "5000/tcp")
	if err != nil {
		return err
	}
	addr := strings.TrimSpace(strings.Split(string(out), "\n")[0])
	// The listener is up once netstat inside the container shows it: a
	// probe connection would not tell, as a userland proxy accepts before
	// its backend listens.
	if err := waitFor(ctx, 30*time.Second, "nc to listen", func() (bool, error) {
		out, err := e.cli.Run(ctx, "exec", id, "netstat", "-ltn")
		return err == nil && strings.Contains(string(out), ":5000 "), nil
	}); err != nil {
		return err
	}
	wall, err := sendAll(ctx, addr, throughputBytes)
	if err != nil {
		return fmt.Errorf("send to %s: %w", addr, err)
	}
	if record {
		res.wall = append(res.wall, wall)
	}
	return nil
}

// sendAll connects to addr, writes n bytes, shuts its side down and waits
// for the peer to close; it returns the time from connect to that close.
func sendAll(ctx context.Context, addr string, n int64) (time.Duration, error) {
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	buf := make([]byte, 256<<10)
	for sent := int64(0); sent < n; {
		k := min(int64(len(buf)), n-sent)
		if _, err := conn.Write(buf[:k]); err != nil {
			return 0, fmt.Errorf("after %d bytes: %w", sent, err)
		}
		sent += k
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, err
	}
	if _, err := io.Copy(io.Discard, conn); err != nil {
		return 0, fmt.Errorf("wait for the listener to close: %w", err)
	}
	return time.Since(start), nil
}

// mibPerSec is the rate of moving n bytes in d.
func mibPerSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / (1 << 20) / d.Seconds()
}
