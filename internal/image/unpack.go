package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/snapshot"
)

// layerToUnpack is one layer of an image on its way into a snapshot.
type layerToUnpack struct {
	chainID digest.Digest
	parent  digest.Digest // "" for the first layer
	diffID  digest.Digest
}

// haveSnapshot reports whether the committed snapshot name exists.
func (s *Service) haveSnapshot(ctx context.Context, name digest.Digest) (bool, error) {
	_, err := s.cfg.Snapshotter.Stat(ctx, name.String())
	if err == nil {
		return true, nil
	}
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return false, err
}

// unpack applies the layer stream r (compressed as the blob is) to a new
// snapshot committed as l.chainID on l.parent, checking that the
// uncompressed stream has digest l.diffID. It reads r to its end. If the
// snapshot exists already (another pull made it) r is not read and unpack
// returns false.
func (s *Service) unpack(ctx context.Context, l layerToUnpack, r io.Reader, progress func(n int64)) (bool, error) {
	unlock := s.lockLayer(l.chainID)
	defer unlock()
	if ok, err := s.haveSnapshot(ctx, l.chainID); err != nil || ok {
		return false, err
	}
	key := "extract-" + randomHex(8) + "-" + l.chainID.Encoded()
	parent := ""
	if l.parent != "" {
		parent = l.parent.String()
	}
	mounts, err := s.cfg.Snapshotter.Prepare(ctx, key, parent)
	if l.parent == "" && err != nil {
		return false, fmt.Errorf("prepare snapshot for layer %s: %w", l.diffID, err)
	}
	if err != nil {
		return false, fmt.Errorf("prepare snapshot for layer %s on %s: %w", l.diffID, l.parent, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = s.cfg.Snapshotter.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	upper, lowers, err := snapshot.UpperDir(mounts)
	if err != nil {
		return false, fmt.Errorf("unpack layer %s: %w", l.diffID, err)
	}
	opts := archive.ApplyOptions{Whiteouts: archive.WhiteoutDelete}
	if s.cfg.Overlay {
		opts = archive.ApplyOptions{Whiteouts: archive.WhiteoutOverlay, Lowers: lowers}
	}
	if progress != nil {
		r = &countingReader{r: r, fn: progress}
	}
	plain, _, err := archive.Decompress(r)
	if err != nil {
		return false, fmt.Errorf("unpack layer %s: %w", l.diffID, err)
	}
	defer plain.Close()
	diffDigester := digest.Canonical.Digester()
	tarSize := &byteCounter{}
	size, err := applyConcurrently(ctx, upper, plain, io.MultiWriter(diffDigester.Hash(), tarSize), opts)
	if err != nil {
		return false, fmt.Errorf("unpack layer %s: %w", l.diffID, err)
	}
	if got := diffDigester.Digest(); got != l.diffID {
		return false, fmt.Errorf("unpack layer: uncompressed digest %s does not match the config's diff id %s: %w", got, l.diffID, errdefs.ErrDataLoss)
	}
	labels := map[string]string{
		labelLayerSize:       strconv.FormatInt(size, 10),
		labelTarSize:         strconv.FormatInt(tarSize.n, 10),
		"berth.layer.diffid": l.diffID.String(),
	}
	if err := s.cfg.Snapshotter.Commit(ctx, l.chainID.String(), key, snapshot.WithLabels(labels)); err != nil {
		return false, fmt.Errorf("commit snapshot for layer %s: %w", l.diffID, err)
	}
	committed = true
	return true, nil
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.fn(c.n)
	}
	return n, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// byteCounter counts the bytes written to it.
type byteCounter struct{ n int64 }

func (b *byteCounter) Write(p []byte) (int, error) {
	b.n += int64(len(p))
	return len(p), nil
}

// Chunks of a layer stream in flight between the reading and the applying
// goroutine of applyConcurrently.
const (
	applyChunkSize = 256 << 10
	applyChunks    = 8
)

// applyConcurrently applies the tar stream r to root like archive.Apply,
// but reads r (network, decompression, hashing: the caller's chain, and
// hash, which sees every byte of r) in this goroutine while another one
// creates the files, so the two overlap on separate cores. r is read to
// its end. No goroutine outlives the call, so the caller may close what r
// reads from as soon as it returns.
func applyConcurrently(ctx context.Context, root string, r io.Reader, hash io.Writer, opts archive.ApplyOptions) (int64, error) {
	type chunk struct {
		data []byte
		err  error
	}
	chunks := make(chan chunk, applyChunks)
	free := make(chan []byte, applyChunks+2)
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	cr := &chunkReader{next: func() ([]byte, error) {
		c, ok := <-chunks
		if !ok {
			return nil, io.EOF
		}
		return c.data, c.err
	}, release: func(b []byte) {
		select {
		case free <- b[:cap(b)]:
		default:
		}
	}}
	go func() {
		n, err := archive.Apply(ctx, root, cr, opts)
		done <- result{n, err}
	}()
	// send hands a chunk to the applier unless it has stopped.
	var applied *result
	send := func(c chunk) bool {
		select {
		case chunks <- c:
			return true
		case res := <-done:
			applied = &res
			return false
		}
	}
	var readErr error
	for {
		var buf []byte
		select {
		case buf = <-free:
		default:
			buf = make([]byte, applyChunkSize)
		}
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			hash.Write(buf[:n])
			if !send(chunk{data: buf[:n]}) {
				break
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			readErr = err
			send(chunk{err: err})
			break
		}
	}
	close(chunks)
	if applied == nil {
		res := <-done
		applied = &res
	}
	switch {
	case readErr != nil:
		return 0, readErr
	case applied.err != nil:
		return 0, applied.err
	}
	// Apply stops at the tar's end; the rest (padding) still counts.
	if _, err := io.Copy(hash, r); err != nil {
		return 0, err
	}
	return applied.n, nil
}

// chunkReader reads a stream handed over in chunks.
type chunkReader struct {
	next    func() ([]byte, error)
	release func([]byte)
	cur     []byte
	buf     []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.buf != nil {
			c.release(c.buf)
			c.buf = nil
		}
		b, err := c.next()
		if err != nil {
			return 0, err
		}
		c.cur, c.buf = b, b
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}
