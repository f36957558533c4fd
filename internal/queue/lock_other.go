//go:build !unix

package queue

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir opens dir/LOCK; without flock, exclusion is left to the operator.
func lockDir(dir string) (*os.File, error) {
	p := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("queue: open lock file %s: %w", p, err)
	}
	return f, nil
}
