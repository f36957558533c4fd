package influx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/internal/queue"
)

// The spill is the gateway's durable queue (internal/queue) in SpillDir:
// one record per spilled batch, its payload the batch's line protocol,
// newline-separated, fsynced before Append returns. Unlike the gateway,
// which drops its oldest records to keep recording, the centre refuses
// new points when the spill is full (ErrSpillFull): what the spill holds
// was acknowledged to the broker, and only the broker may keep the rest.

// ErrSpillFull is returned by Append when InfluxDB cannot take samples and
// the spill has reached Options.SpillMaxBytes.
var ErrSpillFull = errors.New("influx spill is full")

// spillSegmentBytes is the spill's segment size: acknowledged data is
// freed a segment at a time.
const spillSegmentBytes = 16 << 20

// legacyExt is the segment extension of the spill of earlier versions,
// migrated into the queue on Open.
const legacyExt = ".spill"

// spill is the durable queue of line protocol InfluxDB has not taken yet.
type spill struct {
	dir      string
	maxBytes int64
	q        *queue.Queue

	wmu   sync.Mutex   // one writer at a time (the queue allows one)
	lines atomic.Int64 // unacknowledged lines
	// rmu serialises readers; lastRead is the id after which next reads.
	rmu sync.Mutex
}

// spillBatch is a run of records read for replay, oldest first.
type spillBatch struct {
	ids   []uint64
	lines []string
}

// openSpill opens or creates the spill in dir; warnings are what Open
// repaired or migrated.
func openSpill(dir string, maxBytes int64, log *zap.Logger) (*spill, []string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("influx spill: create dir %s: %w", dir, err)
	}
	seg := int64(spillSegmentBytes)
	for seg > 4096 && seg*4 > maxBytes {
		seg /= 2
	}
	// The queue's own bound is set above ours, so it never drops a record:
	// append refuses first.
	q, err := queue.Open(dir, queue.Options{SegmentBytes: seg, MaxBytes: maxBytes + 2*seg + queue.MaxRecordBytes, Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("influx spill: %w", err)
	}
	s := &spill{dir: dir, maxBytes: maxBytes, q: q}
	var warnings []string
	var after uint64
	for {
		r, err := q.NextUnacked(after)
		if errors.Is(err, queue.ErrEmpty) {
			break
		}
		var ce *queue.CorruptError
		if errors.As(err, &ce) {
			warnings = append(warnings, ce.Error()+"; its points are lost")
			if err := q.Ack(ce.ID); err != nil {
				return nil, nil, fmt.Errorf("influx spill: %w", err)
			}
			after = ce.ID
			continue
		}
		if err != nil {
			q.Close()
			return nil, nil, fmt.Errorf("influx spill: %w", err)
		}
		s.lines.Add(int64(bytes.Count(r.Data, []byte{'\n'}) + 1))
		after = r.ID
	}
	migrated, err := s.migrateLegacy()
	warnings = append(warnings, migrated...)
	if err != nil {
		q.Close()
		return nil, nil, err
	}
	return s, warnings, nil
}

func (s *spill) empty() bool {
	n, _ := s.q.Depth()
	return n == 0
}

// depth returns the unacknowledged bytes, records and lines and the spill
// time of the oldest of them (zero when empty).
func (s *spill) depth() (bytes int64, records, lines int, oldest time.Time) {
	records, bytes = s.q.Depth()
	if records > 0 {
		oldest = time.Now().Add(-s.q.OldestAge())
	}
	return bytes, records, int(s.lines.Load()), oldest
}

// append stores lines as one record, fsynced, or refuses with ErrSpillFull.
func (s *spill) append(lines []string, _ time.Time) error {
	text := strings.Join(lines, "\n")
	if len(text) > queue.MaxRecordBytes {
		// Split rather than refuse: a record has a size limit, a batch not.
		mid := len(lines) / 2
		if mid == 0 {
			return fmt.Errorf("influx spill: a line of %d bytes exceeds the %d-byte record limit", len(text), queue.MaxRecordBytes)
		}
		if err := s.append(lines[:mid], time.Time{}); err != nil {
			return err
		}
		return s.append(lines[mid:], time.Time{})
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, unacked := s.q.Depth(); unacked+int64(len(text)) > s.maxBytes {
		return fmt.Errorf("%w (%d bytes unacknowledged, limit %d)", ErrSpillFull, unacked, s.maxBytes)
	}
	if _, err := s.q.Append([]byte(text)); err != nil {
		return fmt.Errorf("influx spill: %w", err)
	}
	s.lines.Add(int64(len(lines)))
	return nil
}

// next reads the oldest records up to about maxLines lines (at least one
// record). ok is false when the spill is empty. A corrupt record is
// logged by the caller's warning and skipped (acknowledged).
func (s *spill) next(maxLines int) (b spillBatch, ok bool, err error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	var after uint64
	for len(b.lines) < maxLines {
		r, err := s.q.NextUnacked(after)
		if errors.Is(err, queue.ErrEmpty) {
			break
		}
		var ce *queue.CorruptError
		if errors.As(err, &ce) {
			if err := s.q.Ack(ce.ID); err != nil {
				return b, false, fmt.Errorf("influx spill: %w", err)
			}
			after = ce.ID
			continue
		}
		if err != nil {
			return b, false, fmt.Errorf("influx spill: %w", err)
		}
		lines := strings.Split(string(r.Data), "\n")
		if len(b.ids) > 0 && len(b.lines)+len(lines) > maxLines {
			break
		}
		b.ids = append(b.ids, r.ID)
		b.lines = append(b.lines, lines...)
		after = r.ID
	}
	return b, len(b.ids) > 0, nil
}

// ack drops a replayed batch from the spill.
func (s *spill) ack(b spillBatch) error {
	if err := s.q.Ack(b.ids...); err != nil {
		return fmt.Errorf("influx spill: %w", err)
	}
	s.lines.Add(-int64(len(b.lines)))
	return nil
}

func (s *spill) close() error {
	if err := s.q.Close(); err != nil {
		return fmt.Errorf("influx spill: %w", err)
	}
	return nil
}

// migrateLegacy moves what an earlier version's spill left in dir
// (segments NNNN.spill of frames uint32 LE length | uint32 LE CRC-32C |
// int64 LE spill time in ms | line protocol) into the queue, then deletes
// those files. Acknowledged records are moved too (the old cursor is not
// read): writing a point to InfluxDB again is harmless.
func (s *spill) migrateLegacy() ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(s.dir, "*"+legacyExt))
	if err != nil || len(paths) == 0 {
		return nil, err
	}
	sort.Strings(paths)
	table := crc32.MakeTable(crc32.Castagnoli)
	var warnings []string
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			return warnings, fmt.Errorf("influx spill: read %s from an earlier version: %w", path, err)
		}
		var records [][]byte
		lines := 0
		for off := 0; off+8 <= len(raw); {
			n := int(binary.LittleEndian.Uint32(raw[off:]))
			sum := binary.LittleEndian.Uint32(raw[off+4:])
			if n < 8 || off+8+n > len(raw) || crc32.Checksum(raw[off+8:off+8+n], table) != sum {
				warnings = append(warnings, fmt.Sprintf("%s: torn or corrupt record at byte %d; the %d bytes after it are dropped", path, off, len(raw)-off))
				break
			}
			rec := raw[off+16 : off+8+n]
			records = append(records, rec)
			lines += bytes.Count(rec, []byte{'\n'}) + 1
			off += 8 + n
		}
		if len(records) > 0 {
			if _, err := s.q.AppendBatch(records); err != nil {
				return warnings, fmt.Errorf("influx spill: migrate %s: %w", path, err)
			}
			s.lines.Add(int64(lines))
		}
		if err := os.Remove(path); err != nil {
			return warnings, fmt.Errorf("influx spill: remove migrated %s: %w", path, err)
		}
		warnings = append(warnings, fmt.Sprintf("migrated %d records (%d points) of %s from an earlier version's spill", len(records), lines, path))
	}
	_ = os.Remove(filepath.Join(s.dir, "cursor"))
	return warnings, nil
}
