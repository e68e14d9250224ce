package metadata

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Concurrent Group calls all land, share commits, and a failing or
// panicking function gets its own error without costing the others theirs.
func TestGroup(t *testing.T) {
	db := openDB(t)
	const n = 64
	errBad := errors.New("bad record")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Group(func(tx *Tx) error {
				if err := tx.PutJSON("test", fmt.Sprint(i), i); err != nil {
					return err
				}
				switch i % 16 {
				case 5:
					return errBad
				case 7:
					panic("boom")
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		var got int
		gerr := db.View(func(tx *Tx) error { return tx.GetJSON("test", fmt.Sprint(i), &got) })
		switch i % 16 {
		case 5:
			if !errors.Is(err, errBad) || gerr == nil {
				t.Errorf("call %d: %v, record read %v; want its own error and no record", i, err, gerr)
			}
		case 7:
			if err == nil || !strings.Contains(err.Error(), "panicked: boom") || gerr == nil {
				t.Errorf("call %d: %v, record read %v; want the panic as its error and no record", i, err, gerr)
			}
		default:
			if err != nil || gerr != nil || got != i {
				t.Errorf("call %d: %v; record %d, %v", i, err, got, gerr)
			}
		}
	}
	// The group still has a leader to give: a later call commits.
	if err := db.Group(func(tx *Tx) error { return tx.PutJSON("test", "after", 1) }); err != nil {
		t.Fatal(err)
	}
}
