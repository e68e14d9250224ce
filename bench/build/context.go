//go:build linux

package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The reference build's shape: what its RUN steps make and what the
// image holds, checked by running it.
const (
	dataFiles = 2000                  // /data/f1..f2000, the first RUN
	genDirs   = 20                    // /gen/d1..d20, the second RUN
	genFiles  = 50                    // files per /gen directory
	touchPath = "src/d00/e0/f000.txt" // the file the touch scenario rewrites
)

// contextMtime is every generated file's modification time, so that the
// context is the same from run to run down to its metadata.
var contextMtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// contextFile is one source file of the generated build context.
type contextFile struct {
	path string // slash-separated, relative to the context
	data []byte
}

// contextFiles returns the reference context's n source files,
// src/dNN/eM/fNNN.txt spread over ten directories of six each, 1 to 8
// KiB of lines of lower-case letters. The same n gives the same files on
// every run.
func contextFiles(n int) []contextFile {
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	files := make([]contextFile, n)
	for i := range files {
		size := 1024 + rng.IntN(7*1024)
		data := make([]byte, size)
		for j := range data {
			if j%64 == 63 {
				data[j] = '\n'
			} else {
				data[j] = byte('a' + rng.IntN(26))
			}
		}
		files[i] = contextFile{path: fmt.Sprintf("src/d%02d/e%d/f%03d.txt", i%10, (i/10)%6, i), data: data}
	}
	return files
}

// dockerfile returns the reference Dockerfile on base: a base stage whose
// RUN steps make many small files and which copies the context's src
// directory, and a final stage that takes those from it.
func dockerfile(base string) string {
	return strings.Join([]string{
		"# bench/build's reference Dockerfile (issue 7)",
		"FROM " + base + " AS base",
		fmt.Sprintf("RUN mkdir -p /data && for i in $(seq 1 %d); do echo $i > /data/f$i; done", dataFiles),
		fmt.Sprintf("RUN for d in $(seq 1 %d); do mkdir -p /gen/d$d; for i in $(seq 1 %d); do echo $d-$i > /gen/d$d/f$i; done; done", genDirs, genFiles),
		"COPY src /src",
		"",
		"FROM " + base,
		"ENV APP_HOME=/app BENCH=build",
		"WORKDIR /app",
		"COPY --from=base /data /data",
		"COPY --from=base /gen /gen",
		"COPY --from=base /src /app/src",
		`CMD ["sh", "-c", "ls /data | wc -l"]`,
		"",
	}, "\n")
}

// checkCommand is what the built image runs to show its content: the
// number of files in /data, then in /gen and /app/src together.
const checkCommand = "ls /data | wc -l; find /gen /app/src -type f | wc -l"

// wantCheck is checkCommand's output for a context of n files.
func wantCheck(n int) string {
	return fmt.Sprintf("%d\n%d\n", dataFiles, genDirs*genFiles+n)
}

// writeContext writes the Dockerfile on base and contextFiles(n) into
// dir, which must not exist yet.
func writeContext(dir, base string, n int) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("make context: %w", err)
	}
	files := append(contextFiles(n), contextFile{path: "Dockerfile", data: []byte(dockerfile(base))})
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("make context: %w", err)
		}
		if err := writeFile(p, f.data); err != nil {
			return err
		}
	}
	return nil
}

// touch rewrites the touch scenario's file for round: its generated
// content and a line naming the round, so every round's COPY misses the
// cache.
func touch(dir string, n, round int) error {
	for _, f := range contextFiles(n) {
		if f.path == touchPath {
			data := append(append([]byte(nil), f.data...), fmt.Sprintf("round %d\n", round)...)
			return writeFile(filepath.Join(dir, filepath.FromSlash(f.path)), data)
		}
	}
	return fmt.Errorf("touch: the context has no %s", touchPath)
}

// writeFile writes data to p (mode 0644) with the context's mtime.
func writeFile(p string, data []byte) error {
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("write context: %w", err)
	}
	if err := os.Chtimes(p, contextMtime, contextMtime); err != nil {
		return fmt.Errorf("write context: %w", err)
	}
	return nil
}
