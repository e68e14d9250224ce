package metadata

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
)

// helperEnv, when set, makes the test binary run a helper instead of the
// tests: "hold:<path>" or "crash:<path>" (see TestMain).
const helperEnv = "BERTH_METADATA_TEST_HELPER"

func TestMain(m *testing.M) {
	if arg := os.Getenv(helperEnv); arg != "" {
		mode, path, _ := strings.Cut(arg, ":")
		var err error
		switch mode {
		case "hold":
			err = holdHelper(path)
		case "crash":
			err = crashHelper(path)
		default:
			err = fmt.Errorf("unknown helper %q", arg)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startHelper runs the test binary as helper mode on path, returning its
// stdin and stdout. The child is killed and reaped when the test ends.
func startHelper(t *testing.T, mode, path string) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode+":"+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, stdin, bufio.NewReader(stdout)
}

// holdHelper opens the database, says "open" and keeps it open until its
// stdin is closed.
func holdHelper(path string) error {
	db, err := Open(path)
	if err != nil {
		return err
	}
	fmt.Println("open")
	io.Copy(io.Discard, os.Stdin)
	return db.Close()
}

func TestOpenLockedByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	cmd, stdin, stdout := startHelper(t, "hold", path)
	if line, err := stdout.ReadString('\n'); err != nil || line != "open\n" {
		t.Fatalf("helper said %q, %v; want \"open\"", line, err)
	}
	start := time.Now()
	db, err := Open(path)
	took := time.Since(start)
	if err == nil {
		db.Close()
		t.Fatal("second Open of a database held by another process succeeded")
	}
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open = %v, want ErrUnavailable naming %s", err, path)
	}
	if took > 3*time.Second {
		t.Errorf("second Open took %v to fail, want about %v", took, lockTimeout)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	db, err = Open(path)
	if err != nil {
		t.Fatalf("Open after the other process closed: %v", err)
	}
	db.Close()
}

// The crash test: a child loops on Update transactions, each of which puts
// image i, points "crash:latest" and "crash:slot<i%5>" at it, deletes image
// i-5 (whose only tag was just moved), puts lease i and deletes lease i-5,
// and records i as the counter; after each commit it prints i. So in every
// committed state with counter c: images and leases are exactly those of
// c-4..c, and every tag names one of them.
const crashKeep = 5

func crashImageID(i int) digest.Digest { return digest.FromString("crash image " + strconv.Itoa(i)) }

// crashPad makes each record span several pages so that commits allocate,
// free and reuse pages.
var crashPad = strings.Repeat("berth crash test padding ", 200)

func crashHelper(path string) error {
	db, err := Open(path)
	if err != nil {
		return err
	}
	var c int
	if err := db.View(func(tx *Tx) error {
		if err := tx.GetJSON("test", "counter", &c); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		return nil
	}); err != nil {
		return err
	}
	// Bounded so that an orphaned child stops by itself; the parent kills
	// it long before.
	for i := c + 1; i <= c+100_000; i++ {
		err := db.Update(func(tx *Tx) error {
			id := crashImageID(i)
			img := Image{
				ID:       id,
				Manifest: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m" + strconv.Itoa(i)), Size: int64(i)},
				Labels:   map[string]string{"pad": crashPad, "i": strconv.Itoa(i)},
			}
			if err := tx.PutImage(img); err != nil {
				return err
			}
			for _, tag := range []string{"latest", "slot" + strconv.Itoa(i%crashKeep)} {
				if err := tx.SetTag("docker.io/library/crash:"+tag, id); err != nil {
					return err
				}
			}
			if i > crashKeep {
				if err := tx.DeleteImage(crashImageID(i - crashKeep)); err != nil {
					return err
				}
				if err := tx.DeleteLease("lease-" + strconv.Itoa(i-crashKeep)); err != nil {
					return err
				}
			}
			lease := Lease{ID: "lease-" + strconv.Itoa(i), Labels: map[string]string{"pad": crashPad}}
			if err := tx.PutLease(lease); err != nil {
				return err
			}
			if err := tx.AddResource(lease.ID, Resource{Kind: ResourceContent, ID: id.String()}); err != nil {
				return err
			}
			return tx.PutJSON("test", "counter", i)
		})
		if err != nil {
			return fmt.Errorf("transaction %d: %w", i, err)
		}
		if _, err := fmt.Printf("%d\n", i); err != nil {
			return err
		}
	}
	return db.Close()
}

// checkCrashState opens the database left by a killed child and checks it
// against the invariants, returning the counter.
func checkCrashState(t *testing.T, path string, reported int) int {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatalf("after SIGKILL: %v", err)
	}
	var c int
	err = db.View(func(tx *Tx) error {
		if err := tx.GetJSON("test", "counter", &c); err != nil {
			return err
		}
		if c < reported {
			t.Errorf("counter %d, but the child reported %d commits", c, reported)
		}
		images, err := tx.Images()
		if err != nil {
			return err
		}
		leases, err := tx.Leases()
		if err != nil {
			return err
		}
		if want := min(c, crashKeep); len(images) != want || len(leases) != want {
			t.Errorf("counter %d: %d images and %d leases, want %d of each", c, len(images), len(leases), want)
		}
		for i := max(1, c-crashKeep+1); i <= c; i++ {
			if _, err := tx.GetImage(crashImageID(i)); err != nil {
				t.Errorf("counter %d: %v", c, err)
			}
			l, err := tx.GetLease("lease-" + strconv.Itoa(i))
			if err != nil || len(l.Resources) != 1 || l.Resources[0].ID != crashImageID(i).String() {
				t.Errorf("counter %d: lease %d = %+v, %v", c, i, l, err)
			}
		}
		if id, err := tx.Tag("docker.io/library/crash:latest"); err != nil || id != crashImageID(c) {
			t.Errorf("counter %d: latest = %s, %v; want image %d", c, id, err, c)
		}
		tags, err := tx.Tags()
		if err != nil {
			return err
		}
		if want := 1 + min(c, crashKeep); len(tags) != want {
			t.Errorf("counter %d: %d tags, want %d", c, len(tags), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCrashConsistency(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	reported := 0
	// Each round starts a child on the database the previous one was
	// killed over and kills it once it has reported n more commits.
	for round, n := range []int{1, 3, 17, 60, 150} {
		cmd, _, stdout := startHelper(t, "crash", path)
		for k := 0; k < n; k++ {
			line, err := stdout.ReadString('\n')
			if err != nil {
				t.Fatalf("round %d: child stopped after %d commits: %v", round, reported, err)
			}
			i, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil || i <= reported {
				t.Fatalf("round %d: child reported %q after %d", round, line, reported)
			}
			reported = i
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, want killed by SIGKILL", round, err)
		}
		c := checkCrashState(t, path, reported)
		t.Logf("round %d: killed after %d reported commits, %d committed", round, reported, c)
		reported = c
	}
}
