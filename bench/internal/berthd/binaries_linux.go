package berthd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Binaries are the programs berthd runs (berth-init only for --init).
var Binaries = []string{"berthd", "berth-shim", "berth-runtime", "berth-init"}

// Build builds the berth programs into dir with the Makefile's own flags
// (static, stripped berth-runtime and berth-shim), from the module the
// bench runs in.
func Build(ctx context.Context, dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "make", "-C", root, "--no-print-directory", "build", "BIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make build: %w\n%s", err, out)
	}
	return nil
}

// CopyBinaries copies Binaries from src into dst, so that a bench runs
// its own copy: a rebuild of src during the run changes nothing.
func CopyBinaries(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, p := range Binaries {
		data, err := os.ReadFile(filepath.Join(src, p))
		if err != nil {
			return fmt.Errorf("-bin: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dst, p), data, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// moduleRoot finds the directory of go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run the bench from the berth module or pass -bin")
		}
		dir = parent
	}
}
