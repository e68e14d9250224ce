package metadata

import (
	"fmt"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// group gathers Group calls that arrive while a commit is under way into
// the next one: a busy daemon (50 containers starting at once) pays one
// commit and one fdatasync for many records, and a lone call pays no
// wait at all.
type group struct {
	mu      sync.Mutex
	pending []*groupCall
	leading bool // a caller is committing; pending calls wait for it
}

type groupCall struct {
	fn   func(*Tx) error
	done chan error
}

// run calls fn; a panic becomes this call's error, so that it can neither
// take the other calls of its transaction down nor leave Group without a
// leader.
func (c *groupCall) run(tx *Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("metadata update panicked: %v", v)
		}
	}()
	return c.fn(tx)
}

// Group runs fn in a read-write transaction like Update, possibly together
// with the functions of concurrent Group calls, and returns fn's error or
// the commit's. fn may run more than once (when another function of its
// transaction fails, the others run again without it), so it must only
// write to the transaction.
func (db *DB) Group(fn func(*Tx) error) error {
	c := &groupCall{fn: fn, done: make(chan error, 1)}
	g := &db.group
	g.mu.Lock()
	g.pending = append(g.pending, c)
	if g.leading {
		g.mu.Unlock()
		return <-c.done
	}
	g.leading = true
	for len(g.pending) > 0 {
		calls := g.pending
		g.pending = nil
		g.mu.Unlock()
		db.commitGroup(calls)
		g.mu.Lock()
	}
	g.leading = false
	g.mu.Unlock()
	return <-c.done
}

// commitGroup runs calls in one transaction and answers each. A function
// that fails is answered its error and the transaction, rolled back, runs
// again without it.
func (db *DB) commitGroup(calls []*groupCall) {
	for len(calls) > 0 {
		failed, ferr := -1, error(nil)
		err := db.b.Update(func(b *bolt.Tx) error {
			tx := &Tx{b: b}
			for i, c := range calls {
				if err := c.run(tx); err != nil {
					failed, ferr = i, err
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			calls[failed].done <- ferr
			calls = slices.Delete(calls, failed, failed+1)
			continue
		}
		for _, c := range calls {
			c.done <- err
		}
		return
	}
}
