package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Defaults of Options.
const (
	DefaultSegmentBytes = 16 << 20
	DefaultMaxBytes     = 512 << 20
)

// MaxRecordBytes bounds one record's payload.
const MaxRecordBytes = 16 << 20

// maxSegmentBytes bounds SegmentBytes so frame offsets fit in 32 bits.
const maxSegmentBytes = 1 << 30

// maxSegmentFile is the largest a segment file can grow: one record may
// start just below SegmentBytes.
const maxSegmentFile = maxSegmentBytes + headerSize + MaxRecordBytes

// ErrEmpty is returned when no unacknowledged record is left to read.
var ErrEmpty = errors.New("queue: no unacknowledged record")

// ErrClosed is returned by every call on a closed queue.
var ErrClosed = errors.New("queue: closed")

// Options tune a queue; the zero value takes every default (see the
// package doc).
type Options struct {
	SegmentBytes int64
	MaxBytes     int64
	Logger       *zap.Logger
	Now          func() time.Time
}

// Record is one queued record.
type Record struct {
	ID       uint64
	Appended time.Time // when Append stored it
	Data     []byte
}

// CorruptError is a record whose bytes on disk no longer match their CRC
// (bit rot after Open checked them). The reader should acknowledge it to
// move on; its content is lost.
type CorruptError struct {
	ID     uint64
	Path   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("queue: record %d in %s at offset %d is corrupt: %s", e.ID, e.Path, e.Offset, e.Reason)
}

// Queue is an open queue directory.
type Queue struct {
	dir  string
	opts Options
	log  *zap.Logger
	lock *os.File

	// wmu serialises writers; the writer does its file I/O and fsync under
	// wmu only, and takes mu just to publish what it committed.
	wmu sync.Mutex
	// mu guards segs, nextID, closed and the segments' indexes.
	mu       sync.Mutex
	segs     []*segment // oldest first; the last is the active one
	nextID   uint64     // id of the next committed record
	closed   bool
	diskSize int64 // committed bytes of all segment files

	dropped atomic.Uint64
	notify  chan struct{}
}

// Open opens or creates the queue in dir, repairing a torn tail.
func Open(dir string, opts Options) (*Queue, error) {
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SegmentBytes < headerSize || opts.SegmentBytes > maxSegmentBytes {
		return nil, fmt.Errorf("queue %s: SegmentBytes %d is outside %d..%d", dir, opts.SegmentBytes, headerSize, maxSegmentBytes)
	}
	if opts.MaxBytes < opts.SegmentBytes {
		return nil, fmt.Errorf("queue %s: MaxBytes %d is below SegmentBytes %d", dir, opts.MaxBytes, opts.SegmentBytes)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("queue: create directory %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Queue{dir: dir, opts: opts, log: opts.Logger.With(zap.String("queue", dir)), lock: lock, notify: make(chan struct{}, 1)}
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

// load reads the directory's segments and ack logs.
func (s *Queue) load() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("queue: list %s: %w", s.dir, err)
	}
	segFirsts := map[uint64]bool{}
	var acks []uint64
	for _, e := range entries {
		first, ok := parseSegName(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		if filepath.Ext(e.Name()) == segExt {
			segFirsts[first] = true
		} else {
			acks = append(acks, first)
		}
	}
	for _, first := range acks {
		if !segFirsts[first] { // its segment was deleted just before a crash
			p := filepath.Join(s.dir, segName(first)+ackExt)
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("queue: remove orphan ack log %s: %w", p, err)
			}
		}
	}
	firsts := make([]uint64, 0, len(segFirsts))
	for f := range segFirsts {
		firsts = append(firsts, f)
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })

	for i, first := range firsts {
		if n := len(s.segs); n > 0 && first < s.segs[n-1].end() {
			return fmt.Errorf("queue: segment %s overlaps ids of segment %s", segName(first), segName(s.segs[n-1].first))
		}
		seg := &segment{dir: s.dir, first: first}
		if seg.f, err = os.OpenFile(seg.path(), os.O_RDWR, 0); err != nil {
			return fmt.Errorf("queue: open segment: %w", err)
		}
		s.segs = append(s.segs, seg)
		badAt, why, err := seg.scan()
		if err != nil {
			return err
		}
		if badAt >= 0 {
			fields := []zap.Field{zap.String("segment", seg.path()), zap.Int64("offset", badAt), zap.String("reason", why), zap.Int("kept_records", seg.count())}
			if i == len(firsts)-1 {
				s.log.Warn("queue: torn or corrupt tail truncated (interrupted write)", fields...)
			} else {
				s.log.Error("queue: corrupt frame inside a sealed segment; records after it in this segment are lost", fields...)
			}
			if err := seg.f.Truncate(badAt); err != nil {
				return fmt.Errorf("queue: truncate segment %s at %d: %w", seg.path(), badAt, err)
			}
			if err := seg.f.Sync(); err != nil {
				return fmt.Errorf("queue: fsync segment %s: %w", seg.path(), err)
			}
		}
		badAck, err := seg.loadAcks()
		if err != nil {
			return err
		}
		if badAck >= 0 {
			s.log.Warn("queue: torn ack log tail truncated", zap.String("ack_log", seg.ackPath()), zap.Int64("offset", badAck))
			if err := os.Truncate(seg.ackPath(), badAck); err != nil {
				return fmt.Errorf("queue: truncate ack log %s at %d: %w", seg.ackPath(), badAck, err)
			}
		}
		s.diskSize += seg.size
	}
	if len(s.segs) == 0 {
		return s.createSegment(1)
	}
	s.nextID = s.segs[len(s.segs)-1].end()
	// Sealed segments acknowledged in full were due for deletion.
	return s.deleteAckedLocked()
}

// createSegment starts an empty active segment whose first id is first.
func (s *Queue) createSegment(first uint64) error {
	seg := &segment{dir: s.dir, first: first}
	f, err := os.OpenFile(seg.path(), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("queue: create segment: %w", err)
	}
	seg.f = f
	if err := syncDir(s.dir); err != nil {
		_ = f.Close()
		return err
	}
	s.mu.Lock()
	s.segs = append(s.segs, seg)
	s.nextID = first
	s.mu.Unlock()
	return nil
}

// Append stores one record durably and returns its id.
func (s *Queue) Append(data []byte) (uint64, error) {
	return s.AppendBatch([][]byte{data})
}

// AppendBatch stores records durably with one fsync per segment touched
// (group commit) and returns the id of the first; the others follow it in
// order. On error no record of the failing segment is kept; when a batch
// spans a segment boundary, records of the earlier segment may be.
func (s *Queue) AppendBatch(records [][]byte) (uint64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	closed, next := s.closed, s.nextID
	s.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	if len(records) == 0 {
		return next, nil
	}
	for i, r := range records {
		if len(r) > MaxRecordBytes {
			return 0, fmt.Errorf("queue %s: record %d of the batch is %d bytes, over the %d limit", s.dir, i, len(r), MaxRecordBytes)
		}
		if int64(headerSize+len(r)) > s.opts.MaxBytes {
			return 0, fmt.Errorf("queue %s: record %d of the batch is %d bytes, over MaxBytes %d", s.dir, i, len(r), s.opts.MaxBytes)
		}
	}
	now := s.opts.Now()
	first := next
	var buf []byte
	var lens []int64
	for _, r := range records {
		n := int64(headerSize + len(r))
		active := s.active()
		pending := int64(len(buf))
		if active.size+pending > 0 && active.size+pending+n > s.opts.SegmentBytes {
			if err := s.commit(buf, lens); err != nil {
				return 0, err
			}
			buf, lens = buf[:0], lens[:0]
			if err := s.roll(); err != nil {
				return 0, err
			}
		}
		if int64(len(buf))+n > s.opts.MaxBytes {
			// The batch alone is over the bound: store what is pending
			// first so that dropping can make room for the rest.
			if err := s.commit(buf, lens); err != nil {
				return 0, err
			}
			buf, lens = buf[:0], lens[:0]
		}
		// Pending frames carry ids from the committed next id on, so they
		// stay valid if makeRoom seals the active segment and starts anew.
		if err := s.makeRoom(int64(len(buf)) + n); err != nil {
			return 0, err
		}
		start := len(buf)
		buf = append(buf, make([]byte, n)...)
		putFrame(buf[start:], next, now, r)
		lens = append(lens, n)
		next++
	}
	if err := s.commit(buf, lens); err != nil {
		return 0, err
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return first, nil
}

// commit writes frames to the end of the active segment, fsyncs and
// publishes them to readers.
func (s *Queue) commit(buf []byte, lens []int64) error {
	if len(buf) == 0 {
		return nil
	}
	active := s.active()
	if _, err := active.f.WriteAt(buf, active.size); err != nil {
		_ = active.f.Truncate(active.size) // leave no torn frame behind
		return fmt.Errorf("queue: write segment %s at %d: %w", active.path(), active.size, err)
	}
	if err := active.f.Sync(); err != nil {
		_ = active.f.Truncate(active.size)
		return fmt.Errorf("queue: fsync segment %s: %w", active.path(), err)
	}
	s.mu.Lock()
	off := active.size
	for _, n := range lens {
		active.addRecord(uint32(off), n)
		off += n
	}
	s.diskSize += int64(len(buf))
	s.nextID += uint64(len(lens))
	s.mu.Unlock()
	return nil
}

// active returns the segment appends go to. Only the writer replaces it,
// but the reader may reshape the slice, hence the lock.
func (s *Queue) active() *segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.segs[len(s.segs)-1]
}

// roll seals the active segment and starts the next one.
func (s *Queue) roll() error {
	s.mu.Lock()
	next := s.nextID
	s.mu.Unlock()
	if err := s.createSegment(next); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteAckedLocked()
}

// makeRoom drops oldest segments until need more bytes fit under MaxBytes.
// When only the active segment is left it is sealed and dropped too.
func (s *Queue) makeRoom(need int64) error {
	for {
		s.mu.Lock()
		fits := s.diskSize+need <= s.opts.MaxBytes
		n := len(s.segs)
		s.mu.Unlock()
		if fits {
			return nil
		}
		if n == 1 {
			if err := s.roll(); err != nil {
				return err
			}
			continue
		}
		s.mu.Lock()
		oldest := s.segs[0]
		lost := oldest.count() - oldest.nacked
		s.segs = s.segs[1:]
		s.diskSize -= oldest.size
		err := oldest.remove()
		s.mu.Unlock()
		if lost > 0 {
			s.dropped.Add(uint64(lost))
			s.log.Warn("queue full: dropped oldest unacknowledged records",
				zap.Int("records", lost), zap.Uint64("first_id", oldest.first), zap.Uint64("last_id", oldest.end()-1),
				zap.Int64("max_bytes", s.opts.MaxBytes), zap.Uint64("dropped_total", s.dropped.Load()))
		}
		if err != nil {
			return err
		}
		if err := syncDir(s.dir); err != nil {
			return err
		}
	}
}

// deleteAckedLocked deletes sealed segments whose records are all
// acknowledged. The caller holds mu.
func (s *Queue) deleteAckedLocked() error {
	kept := s.segs[:0]
	var firstErr error
	deleted := false
	for i, seg := range s.segs {
		if i < len(s.segs)-1 && seg.fullyAcked() && firstErr == nil {
			if err := seg.remove(); err != nil {
				firstErr = err
				kept = append(kept, seg)
				continue
			}
			s.diskSize -= seg.size
			deleted = true
			continue
		}
		kept = append(kept, seg)
	}
	clear(s.segs[len(kept):])
	s.segs = kept
	if deleted {
		if err := syncDir(s.dir); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// Appended signals (without blocking the writer) after records were
// committed; a reader waiting for work selects on it.
func (s *Queue) Appended() <-chan struct{} { return s.notify }

// Peek returns the oldest unacknowledged record, or ErrEmpty.
func (s *Queue) Peek() (Record, error) { return s.NextUnacked(0) }

// NextUnacked returns the oldest unacknowledged record whose id is above
// after, or ErrEmpty. The record's Data is its own copy.
func (s *Queue) NextUnacked(after uint64) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Record{}, ErrClosed
	}
	for _, seg := range s.segs {
		if seg.end() <= after+1 {
			continue
		}
		from := 0
		if after >= seg.first {
			from = int(after + 1 - seg.first)
		}
		if i := seg.firstUnacked(from); i >= 0 {
			return s.readLocked(seg, i)
		}
	}
	return Record{}, ErrEmpty
}

func (s *Queue) readLocked(seg *segment, i int) (Record, error) {
	off := int64(seg.offsets[i])
	b := make([]byte, seg.frameLen(i))
	if _, err := seg.f.ReadAt(b, off); err != nil {
		return Record{}, fmt.Errorf("queue: read record %d from %s at offset %d: %w", seg.first+uint64(i), seg.path(), off, err)
	}
	rec, err := parseFrame(b, seg.first+uint64(i))
	if err != nil {
		return Record{}, &CorruptError{ID: seg.first + uint64(i), Path: seg.path(), Offset: off, Reason: err.Error()}
	}
	return rec, nil
}

// Ack durably marks records as delivered. Ids already acknowledged or
// already gone (dropped, deleted) are ignored; an id never appended is an
// error. Sealed segments left with no unacknowledged record are deleted.
func (s *Queue) Ack(ids ...uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	bySeg := map[*segment][]uint64{}
	var order []*segment
	for _, id := range ids {
		if id == 0 || id >= s.nextID {
			return fmt.Errorf("queue %s: ack of unknown record id %d (last appended is %d)", s.dir, id, s.nextID-1)
		}
		seg := s.segmentOfLocked(id)
		if seg == nil || seg.isAcked(int(id-seg.first)) {
			continue
		}
		if _, ok := bySeg[seg]; !ok {
			order = append(order, seg)
		}
		bySeg[seg] = append(bySeg[seg], id)
	}
	for _, seg := range order {
		if err := seg.writeAcks(bySeg[seg]); err != nil {
			return err
		}
		for _, id := range bySeg[seg] {
			if i := int(id - seg.first); !seg.isAcked(i) {
				seg.setAcked(i)
			}
		}
	}
	if len(order) == 0 {
		return nil
	}
	return s.deleteAckedLocked()
}

// segmentOfLocked finds the segment holding id, or nil.
func (s *Queue) segmentOfLocked(id uint64) *segment {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].end() > id })
	if i == len(s.segs) || id < s.segs[i].first {
		return nil
	}
	return s.segs[i]
}

// Depth returns the unacknowledged records and the bytes of their frames.
func (s *Queue) Depth() (records int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.segs {
		records += seg.count() - seg.nacked
		bytes += seg.unackedBytes
	}
	return records, bytes
}

// DiskBytes returns the bytes of all segment files, the figure MaxBytes
// bounds.
func (s *Queue) DiskBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.diskSize
}

// OldestAge returns how long ago the oldest unacknowledged record was
// appended, or 0 when there is none.
func (s *Queue) OldestAge() time.Duration {
	rec, err := s.Peek()
	if err != nil {
		return 0
	}
	if age := s.opts.Now().Sub(rec.Appended); age > 0 {
		return age
	}
	return 0
}

// Dropped returns how many unacknowledged records were dropped to stay
// under MaxBytes since Open.
func (s *Queue) Dropped() uint64 { return s.dropped.Load() }

// LastID returns the id of the newest committed record, 0 when none was
// ever appended.
func (s *Queue) LastID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextID - 1
}

// Close closes the queue's files; it waits for a running Append.
func (s *Queue) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.closeFilesLocked()
	return nil
}

func (s *Queue) closeFiles() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeFilesLocked()
}

func (s *Queue) closeFilesLocked() {
	for _, seg := range s.segs {
		seg.close()
	}
	if s.lock != nil {
		_ = s.lock.Close() // releases the flock
		s.lock = nil
	}
}

// syncDir fsyncs a directory so created and removed files survive a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("queue: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("queue: fsync directory %s: %w", dir, err)
	}
	return nil
}
