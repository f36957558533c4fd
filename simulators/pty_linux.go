package simulators

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenPTY opens a pseudo-terminal pair for testing Modbus RTU without
// hardware: the master end, in raw mode, is for the simulator (ServeRTU);
// slavePath (/dev/pts/N) is the serial port a gateway opens. Bytes written
// on one end arrive unchanged at the other. The master is pollable, so
// closing it ends a pending Read.
func OpenPTY() (master *os.File, slavePath string, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open pseudo-terminal /dev/ptmx: %w", err)
	}
	fail := func(what string, err error) (*os.File, string, error) {
		master.Close()
		return nil, "", fmt.Errorf("pseudo-terminal: %s: %w", what, err)
	}
	sc, err := master.SyscallConn()
	if err != nil {
		return fail("raw descriptor", err)
	}
	var (
		n      int
		ctlErr error
	)
	err = sc.Control(func(fd uintptr) {
		// Unlock the slave (unlockpt) and learn its number (ptsname).
		if ctlErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ctlErr != nil {
			ctlErr = fmt.Errorf("unlock slave: %w", ctlErr)
			return
		}
		if n, ctlErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN); ctlErr != nil {
			ctlErr = fmt.Errorf("slave number: %w", ctlErr)
			return
		}
		ctlErr = makeRaw(int(fd))
	})
	if err == nil {
		err = ctlErr
	}
	if err != nil {
		return fail("set up", err)
	}
	return master, fmt.Sprintf("/dev/pts/%d", n), nil
}

// makeRaw is cfmakeraw(3): no echo, no line editing, no translation of
// bytes, 8 data bits, so Modbus frames pass unchanged.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("get termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set termios: %w", err)
	}
	return nil
}
