package build

import (
	"fmt"
	"testing"
)

// benchDockerfile is the reference build: a base stage whose RUN
// steps create many files, a COPY of a few hundred context files, and a
// final stage that copies from the base.
const benchDockerfile = `
FROM busybox AS base
RUN mkdir -p /data && cd /data && i=0; while [ $i -lt 2000 ]; do echo $i > f$i; i=$((i+1)); done
RUN i=0; while [ $i -lt 200 ]; do mkdir -p /deps/d$i && echo x > /deps/d$i/file; i=$((i+1)); done
COPY src/ /app/
RUN ls /app | wc -l > /count
FROM busybox
COPY --from=base /data /data
COPY --from=base /count /count
CMD ["cat", "/count"]
`

// BenchmarkBuild builds the reference Dockerfile cold (NoCache) and warm
// (every step from the cache).
func BenchmarkBuild(b *testing.B) {
	e := newEnv(b)
	files := map[string]string{"Dockerfile": benchDockerfile}
	for i := range 300 {
		files[fmt.Sprintf("src/file%03d.txt", i)] = fmt.Sprintf("content of file %d\n", i)
	}
	dir := e.writeContext(files)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			if _, out, err := e.build(dir, Options{NoCache: true}); err != nil {
				b.Fatalf("%v\n%s", err, out)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			if _, out, err := e.build(dir, Options{}); err != nil {
				b.Fatalf("%v\n%s", err, out)
			}
		}
	})
}
