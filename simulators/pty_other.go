//go:build !linux

package simulators

import (
	"errors"
	"os"
)

// OpenPTY opens a pseudo-terminal pair; only Linux is supported.
func OpenPTY() (master *os.File, slavePath string, err error) {
	return nil, "", errors.New("pseudo-terminal pairs are only supported on Linux")
}
