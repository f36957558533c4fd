package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	headerSize   = 24 // length, crc, id, append time
	ackEntrySize = 12 // id, crc
	segExt       = ".seg"
	ackExt       = ".ack"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segment is one segment file and its in-memory index. The writer changes
// offsets, size and the acked bitset's length only under Queue.mu.
type segment struct {
	dir          string
	first        uint64   // id of the segment's first record
	offsets      []uint32 // frame start of each record, in id order
	size         int64    // committed bytes in the file
	acked        []uint64 // bitset over record indexes
	nacked       int
	unackedBytes int64
	f            *os.File // the segment, open read-write
	ackFile      *os.File // the ack log, opened on first use
}

func segName(first uint64) string { return fmt.Sprintf("%020d", first) }

func (s *segment) path() string    { return filepath.Join(s.dir, segName(s.first)+segExt) }
func (s *segment) ackPath() string { return filepath.Join(s.dir, segName(s.first)+ackExt) }
func (s *segment) count() int      { return len(s.offsets) }

// end is one past the id of the segment's last record.
func (s *segment) end() uint64 { return s.first + uint64(len(s.offsets)) }

func (s *segment) fullyAcked() bool { return s.nacked == len(s.offsets) }

// frameLen is the byte length of record i's frame.
func (s *segment) frameLen(i int) int64 {
	if i+1 < len(s.offsets) {
		return int64(s.offsets[i+1]) - int64(s.offsets[i])
	}
	return s.size - int64(s.offsets[i])
}

func (s *segment) isAcked(i int) bool { return s.acked[i/64]&(1<<(uint(i)%64)) != 0 }

func (s *segment) setAcked(i int) {
	s.acked[i/64] |= 1 << (uint(i) % 64)
	s.nacked++
	s.unackedBytes -= s.frameLen(i)
}

// addRecord indexes a committed frame at offset off of length n.
func (s *segment) addRecord(off uint32, n int64) {
	s.offsets = append(s.offsets, off)
	if len(s.offsets) > len(s.acked)*64 {
		s.acked = append(s.acked, 0)
	}
	s.size = int64(off) + n
	s.unackedBytes += n
}

// firstUnacked returns the index of the first unacknowledged record at or
// after index from, or -1.
func (s *segment) firstUnacked(from int) int {
	n := len(s.offsets)
	for i := from; i < n; {
		w := ^s.acked[i/64] >> (uint(i) % 64)
		if w == 0 {
			i = (i/64 + 1) * 64
			continue
		}
		j := i + bits.TrailingZeros64(w)
		if j < n {
			return j
		}
		return -1
	}
	return -1
}

func (s *segment) close() {
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
	if s.ackFile != nil {
		_ = s.ackFile.Close()
		s.ackFile = nil
	}
}

// remove closes and deletes the segment's files, data first: a left-over
// ack log without its segment is harmless and removed on the next Open.
func (s *segment) remove() error {
	s.close()
	if err := os.Remove(s.path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("queue: delete segment %s: %w", s.path(), err)
	}
	if err := os.Remove(s.ackPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("queue: delete ack log %s: %w", s.ackPath(), err)
	}
	return nil
}

// putFrame writes record id's frame into dst, which must be headerSize +
// len(payload) long.
func putFrame(dst []byte, id uint64, at time.Time, payload []byte) {
	binary.LittleEndian.PutUint32(dst[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint64(dst[8:16], id)
	binary.LittleEndian.PutUint64(dst[16:24], uint64(at.UnixNano()))
	copy(dst[headerSize:], payload)
	binary.LittleEndian.PutUint32(dst[4:8], frameCRC(dst[0:4], dst[8:]))
}

func frameCRC(length, rest []byte) uint32 {
	c := crc32.Update(0, castagnoli, length)
	return crc32.Update(c, castagnoli, rest)
}

// errFrame describes why a frame was refused while scanning or reading.
type errFrame string

func (e errFrame) Error() string { return string(e) }

// parseFrame checks a whole frame read from disk and returns its id, time
// and payload (aliasing b).
func parseFrame(b []byte, wantID uint64) (Record, error) {
	if len(b) < headerSize {
		return Record{}, errFrame("frame shorter than its header")
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if int(n) != len(b)-headerSize {
		return Record{}, errFrame(fmt.Sprintf("length field %d does not match frame of %d bytes", n, len(b)))
	}
	if got := frameCRC(b[0:4], b[8:]); got != binary.LittleEndian.Uint32(b[4:8]) {
		return Record{}, errFrame("CRC mismatch")
	}
	id := binary.LittleEndian.Uint64(b[8:16])
	if id != wantID {
		return Record{}, errFrame(fmt.Sprintf("holds id %d where id %d belongs", id, wantID))
	}
	return Record{
		ID:       id,
		Appended: time.Unix(0, int64(binary.LittleEndian.Uint64(b[16:24]))),
		Data:     b[headerSize:],
	}, nil
}

// scan indexes the frames of s's file and returns the offset of the first
// bad frame and why it is bad, or (-1, "") when the file is whole.
func (s *segment) scan() (int64, string, error) {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return 0, "", fmt.Errorf("queue: seek segment %s: %w", s.path(), err)
	}
	r := bufio.NewReaderSize(s.f, 256<<10)
	var hdr [headerSize]byte
	var buf []byte
	var off int64
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return -1, "", nil
			}
			if err == io.ErrUnexpectedEOF {
				return off, "torn header", nil
			}
			return 0, "", fmt.Errorf("queue: read segment %s at offset %d: %w", s.path(), off, err)
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		if n > MaxRecordBytes {
			return off, fmt.Sprintf("length field %d over the %d limit", n, MaxRecordBytes), nil
		}
		if off+headerSize+int64(n) > maxSegmentFile {
			return off, "frame runs past the largest possible segment", nil
		}
		if cap(buf) < headerSize+int(n) {
			buf = make([]byte, headerSize+int(n))
		}
		buf = buf[:headerSize+int(n)]
		copy(buf, hdr[:])
		if _, err := io.ReadFull(r, buf[headerSize:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return off, "torn payload", nil
			}
			return 0, "", fmt.Errorf("queue: read segment %s at offset %d: %w", s.path(), off, err)
		}
		if _, err := parseFrame(buf, s.end()); err != nil {
			return off, err.Error(), nil
		}
		s.addRecord(uint32(off), int64(len(buf)))
		off += int64(len(buf))
	}
}

// loadAcks reads the ack log and marks the acknowledged records. It returns
// the offset of a torn or corrupt entry, or -1.
func (s *segment) loadAcks() (int64, error) {
	b, err := os.ReadFile(s.ackPath())
	if errors.Is(err, os.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("queue: read ack log %s: %w", s.ackPath(), err)
	}
	for off := 0; off < len(b); off += ackEntrySize {
		if off+ackEntrySize > len(b) {
			return int64(off), nil
		}
		e := b[off : off+ackEntrySize]
		if crc32.Checksum(e[:8], castagnoli) != binary.LittleEndian.Uint32(e[8:12]) {
			return int64(off), nil
		}
		id := binary.LittleEndian.Uint64(e[:8])
		if id < s.first || id >= s.end() {
			continue // a record lost with a truncated tail
		}
		if i := int(id - s.first); !s.isAcked(i) {
			s.setAcked(i)
		}
	}
	return -1, nil
}

// writeAcks appends entries for ids to the ack log and fsyncs it.
func (s *segment) writeAcks(ids []uint64) error {
	if s.ackFile == nil {
		f, err := os.OpenFile(s.ackPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("queue: open ack log: %w", err)
		}
		s.ackFile = f
		// A new file's name must survive a power cut like its entries.
		if err := syncDir(s.dir); err != nil {
			return err
		}
	}
	b := make([]byte, ackEntrySize*len(ids))
	for k, id := range ids {
		e := b[k*ackEntrySize : (k+1)*ackEntrySize]
		binary.LittleEndian.PutUint64(e[:8], id)
		binary.LittleEndian.PutUint32(e[8:12], crc32.Checksum(e[:8], castagnoli))
	}
	if _, err := s.ackFile.Write(b); err != nil {
		return fmt.Errorf("queue: write ack log %s: %w", s.ackPath(), err)
	}
	if err := s.ackFile.Sync(); err != nil {
		return fmt.Errorf("queue: fsync ack log %s: %w", s.ackPath(), err)
	}
	return nil
}

// parseSegName reads the first id from a segment file name.
func parseSegName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, segExt)
	if !ok {
		base, ok = strings.CutSuffix(name, ackExt)
	}
	if !ok || len(base) != 20 {
		return 0, false
	}
	id, err := strconv.ParseUint(base, 10, 64)
	return id, err == nil && id > 0
}
