package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// seqFile keeps the last telemetry sequence number used, so seq keeps
// rising across restarts. Each number is written durably before the
// message carrying it is published: a crash can skip a number, never
// repeat one.
type seqFile struct {
	path string
	last uint64
}

func openSeq(dir string) (*seqFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("gateway data directory %s: %w", dir, err)
	}
	s := &seqFile{path: filepath.Join(dir, "seq")}
	b, err := os.ReadFile(s.path)
	switch {
	case os.IsNotExist(err):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("read sequence state %s: %w", s.path, err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("sequence state %s holds %q, not a number: fix or remove it (the centre will see a restart of seq)", s.path, strings.TrimSpace(string(b)))
	}
	s.last = v
	return s, nil
}

// next reserves and durably records the next sequence number.
func (s *seqFile) next() (uint64, error) {
	n := s.last + 1
	if err := writeFileDurably(s.path, []byte(strconv.FormatUint(n, 10)+"\n")); err != nil {
		return 0, fmt.Errorf("record sequence %d: %w", n, err)
	}
	s.last = n
	return n, nil
}

// writeFileDurably replaces path with data so that after a crash it holds
// either the old or the new content: temp file, fsync, rename, fsync dir.
func writeFileDurably(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
