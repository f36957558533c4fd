//go:build unix

package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive flock on dir/LOCK so that a second gateway
// process cannot write the same queue; the kernel drops it when the
// process dies, so a crash never leaves the queue locked.
func lockDir(dir string) (*os.File, error) {
	p := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("queue: open lock file %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("queue: %s is in use by another process: %w", dir, err)
	}
	return f, nil
}
