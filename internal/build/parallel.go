package build

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// buildStages builds stages 0..target, each as soon as the stages it uses
// (FROM, COPY --from, RUN --mount from) are built, so independent stages
// build in parallel. The progress still reads as a sequential build: a
// stage's lines are held back until the stages before it are done. The
// first stage (in Dockerfile order) that fails gives the error; the
// others are cancelled.
func (bd *build) buildStages(ctx context.Context, target int) error {
	n := target + 1
	bd.stages = make([]*stageState, n)
	deps := bd.stageDeps(target)
	seq := newSequencer(bd.opts.Out, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make([]chan struct{}, n)
	errs := make([]error, n)
	for i := range done {
		done[i] = make(chan struct{})
	}
	base := 0
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		view := *bd // each stage its own progress writer and step count
		view.opts.Out = seq.writer(i)
		view.step = base
		view.deps = deps[i]
		view.lex = shell.NewLex(bd.df.escape)
		base += 1 + len(bd.df.stages[i].Commands)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			defer seq.finish(i)
			for _, d := range deps[i] {
				select {
				case <-done[d]:
					if errs[d] != nil {
						errs[i] = errStageSkipped
						return
					}
				case <-ctx.Done():
					errs[i] = ctx.Err()
					return
				}
			}
			st, err := view.buildStage(ctx, i)
			if err != nil {
				errs[i] = err
				cancel()
				return
			}
			bd.stages[i] = st // read by others only after done[i] closes
		}()
	}
	wg.Wait()
	bd.step = base
	bd.deps = nil // the last steps (--label) use no stage
	// The first real failure, not a stage cancelled because of it.
	for _, err := range errs {
		if err != nil && err != errStageSkipped && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil && err != errStageSkipped {
			return err
		}
	}
	return nil
}

// errStageSkipped marks a stage not built because one it uses failed.
var errStageSkipped = errors.New("stage skipped")

// stageDeps returns, for each stage up to target, the earlier stages it
// uses. A reference made of variables could name any stage: such a stage
// waits for all before it.
func (bd *build) stageDeps(target int) [][]int {
	stages := bd.df.stages
	deps := make([][]int, target+1)
	for i := 0; i <= target; i++ {
		set := map[int]bool{}
		all := false
		ref := func(name string) {
			if strings.Contains(name, "$") {
				all = true
				return
			}
			if j, err := strconv.Atoi(name); err == nil && j >= 0 && j < i {
				set[j] = true
				return
			}
			for j := 0; j < i; j++ {
				if stages[j].Name != "" && strings.EqualFold(stages[j].Name, name) {
					set[j] = true
				}
			}
		}
		base, err := bd.expand(stages[i].BaseName, envGetter{args: bd.metaArgs})
		if err != nil {
			all = true
		}
		for j := 0; j < i; j++ {
			if stages[j].Name != "" && strings.EqualFold(stages[j].Name, base) {
				set[j] = true
			}
		}
		for _, cmd := range stages[i].Commands {
			switch c := cmd.(type) {
			case *instructions.CopyCommand:
				if c.From != "" {
					ref(c.From)
				}
			case *instructions.RunCommand:
				for _, m := range instructions.GetMounts(c) {
					if m.From != "" {
						ref(m.From)
					}
				}
			}
		}
		for j := 0; j < i; j++ {
			if all || set[j] {
				deps[i] = append(deps[i], j)
			}
		}
	}
	return deps
}

// sequencer passes the progress of the stage whose turn it is straight
// through and holds the others' until the stages before them finish.
type sequencer struct {
	mu       sync.Mutex
	out      io.Writer
	cur      int
	held     []bytes.Buffer
	finished []bool
}

func newSequencer(out io.Writer, n int) *sequencer {
	return &sequencer{out: out, held: make([]bytes.Buffer, n), finished: make([]bool, n)}
}

// writer returns stage i's progress writer.
func (s *sequencer) writer(i int) io.Writer { return seqWriter{s: s, i: i} }

// finish marks stage i done and passes on the turn, writing out what the
// next stages held meanwhile.
func (s *sequencer) finish(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished[i] = true
	for s.cur < len(s.finished) && s.finished[s.cur] {
		s.cur++
		if s.cur < len(s.held) {
			_, _ = s.out.Write(s.held[s.cur].Bytes())
			s.held[s.cur] = bytes.Buffer{}
		}
	}
}

type seqWriter struct {
	s *sequencer
	i int
}

func (w seqWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.i == w.s.cur {
		return w.s.out.Write(p)
	}
	return w.s.held[w.i].Write(p)
}
