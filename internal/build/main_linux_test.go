package build

import (
	"fmt"
	"os"
	"testing"

	"github.com/berth-project/berth/internal/testutil"
)

// TestMain removes the berth-runtime binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := testutil.CleanupCache(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
