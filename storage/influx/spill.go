package influx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The spill is a directory of append-only segment files, NNNNNNNNNNNNNNNNNNNN.spill
// in write order. Each record is framed as
//
//	uint32 LE payload length | uint32 LE CRC-32C of payload | payload
//
// and its payload is the spill time (int64 LE Unix ms) followed by
// newline-separated line protocol. A record is written and fsynced before
// Append returns. A short or mismatching record at the end of a segment is a
// torn write from a crash: Open truncates it away. The file "cursor" holds
// "SEQ OFFSET" of the first record of the oldest segment not yet
// acknowledged by InfluxDB; losing it only means replaying again, which the
// schema makes harmless.

// ErrSpillFull is returned by Append when InfluxDB cannot take samples and
// the spill has reached Options.SpillMaxBytes.
var ErrSpillFull = errors.New("influx spill is full")

const (
	recordHeaderBytes = 8
	recordTimeBytes   = 8
	// maxRecordBytes bounds a record's claimed length, so a corrupt header
	// cannot make Open allocate gigabytes.
	maxRecordBytes = 256 << 20
	// segmentBytes is the size after which the active segment is sealed
	// and a new one started, so acknowledged data is freed in steps.
	segmentBytes = 64 << 20
	segmentExt   = ".spill"
	cursorFile   = "cursor"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordMeta locates one record in its segment.
type recordMeta struct {
	offset  int64
	size    int64 // header included
	lines   int
	spilled time.Time
}

type segment struct {
	seq     uint64
	path    string
	records []recordMeta
	size    int64
}

// spill is the durable queue of line protocol InfluxDB has not taken yet.
type spill struct {
	dir      string
	maxBytes int64

	mu      sync.Mutex
	segs    []*segment // oldest first; the last one may be active
	active  *os.File   // open for append when the last segment is active
	nextSeq uint64
	acked   int   // records of segs[0] InfluxDB acknowledged
	bytes   int64 // unacknowledged bytes
	records int   // unacknowledged records
	lines   int   // unacknowledged lines
}

// spillBatch is a run of consecutive records of one segment, read for replay.
type spillBatch struct {
	seg   *segment
	first int // index of the first record in seg.records
	count int
	lines []string
}

// openSpill opens or creates the spill in dir, truncating torn tails.
func openSpill(dir string, maxBytes int64) (*spill, []string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("influx spill: create dir %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("influx spill: list %s: %w", dir, err)
	}
	s := &spill{dir: dir, maxBytes: maxBytes, nextSeq: 1}
	var warnings []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segmentExt) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("ignoring %s: not a segment name", filepath.Join(dir, name)))
			continue
		}
		seg, warn, err := scanSegment(filepath.Join(dir, name), seq)
		if err != nil {
			return nil, nil, err
		}
		if warn != "" {
			warnings = append(warnings, warn)
		}
		if seq >= s.nextSeq {
			s.nextSeq = seq + 1
		}
		if len(seg.records) == 0 {
			if err := os.Remove(seg.path); err != nil {
				return nil, nil, fmt.Errorf("influx spill: remove empty segment %s: %w", seg.path, err)
			}
			continue
		}
		s.segs = append(s.segs, seg)
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].seq < s.segs[j].seq })
	s.acked = s.readCursor()
	for i, seg := range s.segs {
		for _, r := range seg.records[s.ackedIn(i):] {
			s.bytes += r.size
			s.records++
			s.lines += r.lines
		}
	}
	return s, warnings, nil
}

func (s *spill) ackedIn(segIndex int) int {
	if segIndex == 0 {
		return s.acked
	}
	return 0
}

// readCursor returns how many records of the oldest segment were already
// acknowledged, 0 when the cursor is missing or does not match.
func (s *spill) readCursor() int {
	if len(s.segs) == 0 {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(s.dir, cursorFile))
	if err != nil {
		return 0
	}
	var seq uint64
	var off int64
	if _, err := fmt.Sscanf(string(b), "%d %d", &seq, &off); err != nil || seq != s.segs[0].seq {
		return 0
	}
	for i, r := range s.segs[0].records {
		if r.offset == off {
			return i
		}
	}
	return 0
}

// scanSegment reads a segment's record index, truncating a torn tail.
func scanSegment(path string, seq uint64) (*segment, string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, "", fmt.Errorf("influx spill: open segment %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("influx spill: stat segment %s: %w", path, err)
	}
	seg := &segment{seq: seq, path: path}
	fileSize := info.Size()
	var off int64
	var header [recordHeaderBytes]byte
	for off < fileSize {
		meta, err := readRecordAt(f, off, fileSize, header[:])
		if err != nil {
			if terr := f.Truncate(off); terr != nil {
				return nil, "", fmt.Errorf("influx spill: truncate torn tail of %s at %d: %w", path, off, terr)
			}
			if serr := f.Sync(); serr != nil {
				return nil, "", fmt.Errorf("influx spill: sync %s: %w", path, serr)
			}
			warn := fmt.Sprintf("truncated %s at byte %d (%d bytes dropped): %v; records after a torn or corrupt record cannot be framed", path, off, fileSize-off, err)
			seg.size = off
			return seg, warn, nil
		}
		seg.records = append(seg.records, meta)
		off += meta.size
	}
	seg.size = off
	return seg, "", nil
}

// readRecordAt checks the record at off and returns its meta.
func readRecordAt(f *os.File, off, fileSize int64, header []byte) (recordMeta, error) {
	if fileSize-off < recordHeaderBytes {
		return recordMeta{}, fmt.Errorf("short header")
	}
	if _, err := f.ReadAt(header, off); err != nil {
		return recordMeta{}, fmt.Errorf("read header: %w", err)
	}
	n := int64(binary.LittleEndian.Uint32(header[0:4]))
	sum := binary.LittleEndian.Uint32(header[4:8])
	if n < recordTimeBytes || n > maxRecordBytes {
		return recordMeta{}, fmt.Errorf("bad record length %d", n)
	}
	if fileSize-off-recordHeaderBytes < n {
		return recordMeta{}, fmt.Errorf("record of %d bytes cut short", n)
	}
	payload := make([]byte, n)
	if _, err := f.ReadAt(payload, off+recordHeaderBytes); err != nil {
		return recordMeta{}, fmt.Errorf("read payload: %w", err)
	}
	if crc32.Checksum(payload, castagnoli) != sum {
		return recordMeta{}, fmt.Errorf("checksum mismatch")
	}
	lines := 0
	if n > recordTimeBytes {
		lines = strings.Count(string(payload[recordTimeBytes:]), "\n") + 1
	}
	spilled := time.UnixMilli(int64(binary.LittleEndian.Uint64(payload[:recordTimeBytes])))
	return recordMeta{offset: off, size: recordHeaderBytes + n, lines: lines, spilled: spilled}, nil
}

// empty reports whether every spilled record has been acknowledged.
func (s *spill) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records == 0
}

// depth returns the unacknowledged bytes, records and lines and the spill
// time of the oldest of them (zero when empty).
func (s *spill) depth() (bytes int64, records, lines int, oldest time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.records > 0 {
		for i, seg := range s.segs {
			if a := s.ackedIn(i); a < len(seg.records) {
				oldest = seg.records[a].spilled
				break
			}
		}
	}
	return s.bytes, s.records, s.lines, oldest
}

// append writes lines as one record and fsyncs it.
func (s *spill) append(lines []string, now time.Time) error {
	text := strings.Join(lines, "\n")
	n := recordTimeBytes + len(text)
	if n > maxRecordBytes {
		return fmt.Errorf("influx spill: record of %d bytes exceeds the %d-byte record limit", n, maxRecordBytes)
	}
	buf := make([]byte, recordHeaderBytes+n)
	binary.LittleEndian.PutUint64(buf[recordHeaderBytes:], uint64(now.UnixMilli()))
	copy(buf[recordHeaderBytes+recordTimeBytes:], text)
	binary.LittleEndian.PutUint32(buf[0:4], uint32(n))
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(buf[recordHeaderBytes:], castagnoli))

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bytes+int64(len(buf)) > s.maxBytes {
		return fmt.Errorf("%w: %d bytes spilled, limit %d, %d more needed", ErrSpillFull, s.bytes, s.maxBytes, len(buf))
	}
	if s.active == nil {
		if err := s.startSegment(); err != nil {
			return err
		}
	}
	seg := s.segs[len(s.segs)-1]
	if _, err := s.active.WriteAt(buf, seg.size); err != nil {
		// A partial write is a torn tail: cut it so the next record frames.
		_ = s.active.Truncate(seg.size)
		return fmt.Errorf("influx spill: write %s: %w", seg.path, err)
	}
	if err := s.active.Sync(); err != nil {
		_ = s.active.Truncate(seg.size)
		return fmt.Errorf("influx spill: fsync %s: %w", seg.path, err)
	}
	seg.records = append(seg.records, recordMeta{offset: seg.size, size: int64(len(buf)), lines: len(lines), spilled: time.UnixMilli(now.UnixMilli())})
	seg.size += int64(len(buf))
	s.bytes += int64(len(buf))
	s.records++
	s.lines += len(lines)
	if seg.size >= segmentBytes {
		s.sealLocked()
	}
	return nil
}

// startSegment creates the next segment file and makes it active.
func (s *spill) startSegment() error {
	path := filepath.Join(s.dir, fmt.Sprintf("%020d%s", s.nextSeq, segmentExt))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return fmt.Errorf("influx spill: create segment %s: %w", path, err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	s.segs = append(s.segs, &segment{seq: s.nextSeq, path: path})
	s.nextSeq++
	s.active = f
	return nil
}

func (s *spill) sealLocked() {
	if s.active != nil {
		_ = s.active.Close()
		s.active = nil
	}
}

// next reads up to maxLines lines of whole records from the oldest
// unacknowledged segment (at least one record). ok is false when the spill
// is empty.
func (s *spill) next(maxLines int) (b spillBatch, ok bool, err error) {
	s.mu.Lock()
	if s.records == 0 {
		s.mu.Unlock()
		return spillBatch{}, false, nil
	}
	seg := s.segs[0]
	if len(s.segs) == 1 && s.active != nil {
		// Seal the active segment so it is immutable while being replayed;
		// new spills go to a fresh segment behind it.
		s.sealLocked()
	}
	first := s.acked
	records := seg.records
	s.mu.Unlock()

	f, err := os.Open(seg.path)
	if err != nil {
		return spillBatch{}, false, fmt.Errorf("influx spill: open %s for replay: %w", seg.path, err)
	}
	defer f.Close()
	b = spillBatch{seg: seg, first: first}
	for i := first; i < len(records) && (b.count == 0 || len(b.lines)+records[i].lines <= maxLines); i++ {
		r := records[i]
		payload := make([]byte, r.size-recordHeaderBytes)
		if _, err := f.ReadAt(payload, r.offset+recordHeaderBytes); err != nil && !errors.Is(err, io.EOF) {
			return spillBatch{}, false, fmt.Errorf("influx spill: read %s at %d: %w", seg.path, r.offset, err)
		}
		if text := string(payload[recordTimeBytes:]); text != "" {
			b.lines = append(b.lines, strings.Split(text, "\n")...)
		}
		b.count++
	}
	return b, true, nil
}

// ack drops a replayed batch: InfluxDB has it. A fully acknowledged segment
// is deleted; otherwise the cursor records how far it got.
func (s *spill) ack(b spillBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 || s.segs[0] != b.seg || s.acked != b.first {
		return fmt.Errorf("influx spill: acknowledging records %d..%d of %s out of order", b.first, b.first+b.count, b.seg.path)
	}
	for _, r := range b.seg.records[b.first : b.first+b.count] {
		s.bytes -= r.size
		s.records--
		s.lines -= r.lines
	}
	s.acked += b.count
	if s.acked == len(b.seg.records) && !(len(s.segs) == 1 && s.active != nil) {
		if err := os.Remove(b.seg.path); err != nil {
			return fmt.Errorf("influx spill: remove replayed segment %s: %w", b.seg.path, err)
		}
		s.segs = s.segs[1:]
		s.acked = 0
		_ = os.Remove(filepath.Join(s.dir, cursorFile))
		return nil
	}
	// No fsync: a lost cursor only replays acknowledged records again.
	next := b.seg.size
	if s.acked < len(b.seg.records) {
		next = b.seg.records[s.acked].offset
	}
	tmp := filepath.Join(s.dir, cursorFile+".tmp")
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", b.seg.seq, next), 0o640); err != nil {
		return fmt.Errorf("influx spill: write cursor: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, cursorFile)); err != nil {
		return fmt.Errorf("influx spill: write cursor: %w", err)
	}
	return nil
}

func (s *spill) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != nil {
		err := s.active.Close()
		s.active = nil
		if err != nil {
			return fmt.Errorf("influx spill: close segment: %w", err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("influx spill: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("influx spill: fsync dir %s: %w", dir, err)
	}
	return nil
}
