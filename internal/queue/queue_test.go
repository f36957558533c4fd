package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fakeClock is a settable clock for append times.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func openT(t *testing.T, dir string, opts Options) *Queue {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open queue %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func payload(id uint64) []byte { return []byte(fmt.Sprintf("record-%06d", id)) }

func appendN(t *testing.T, s *Queue, n int) []uint64 {
	t.Helper()
	var ids []uint64
	for range n {
		want := s.LastID() + 1
		id, err := s.Append(payload(want))
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		if id != want {
			t.Fatalf("append got id %d, want %d", id, want)
		}
		ids = append(ids, id)
	}
	return ids
}

// unacked lists the unacknowledged ids in the order NextUnacked yields
// them, checking each record's payload.
func unacked(t *testing.T, s *Queue) []uint64 {
	t.Helper()
	var ids []uint64
	var after uint64
	for {
		r, err := s.NextUnacked(after)
		if errors.Is(err, ErrEmpty) {
			return ids
		}
		if err != nil {
			t.Fatalf("next unacked after %d: %v", after, err)
		}
		if string(r.Data) != string(payload(r.ID)) {
			t.Fatalf("record %d holds %q, want %q", r.ID, r.Data, payload(r.ID))
		}
		ids = append(ids, r.ID)
		after = r.ID
	}
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segExt))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

func TestAppendPeekAckInOrder(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	if _, err := s.Peek(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("peek of a new queue: got %v, want ErrEmpty", err)
	}
	appendN(t, s, 5)
	if n, b := s.Depth(); n != 5 || b != 5*int64(headerSize+len(payload(1))) {
		t.Fatalf("depth = %d records %d bytes, want 5 records %d bytes", n, b, 5*(headerSize+len(payload(1))))
	}
	for want := uint64(1); want <= 5; want++ {
		r, err := s.Peek()
		if err != nil || r.ID != want {
			t.Fatalf("peek = %d, %v; want %d", r.ID, err, want)
		}
		if err := s.Ack(r.ID); err != nil {
			t.Fatalf("ack %d: %v", r.ID, err)
		}
	}
	if _, err := s.Peek(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("peek after acking all: got %v, want ErrEmpty", err)
	}
	if n, b := s.Depth(); n != 0 || b != 0 {
		t.Fatalf("depth after acking all = %d, %d; want 0, 0", n, b)
	}
}

func TestAckOutOfOrderSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	appendN(t, s, 10)
	if err := s.Ack(7, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(1, 3); err != nil { // 3 again: a no-op
		t.Fatal(err)
	}
	want := []uint64{2, 4, 5, 6, 8, 9, 10}
	if got := unacked(t, s); !slices.Equal(got, want) {
		t.Fatalf("unacked = %v, want %v", got, want)
	}
	if err := s.Ack(11); err == nil || !strings.Contains(err.Error(), "unknown record id 11") {
		t.Fatalf("ack of a never appended id: got %v, want an unknown id error", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: got %v, want ErrClosed", err)
	}

	s2 := openT(t, dir, Options{})
	if got := unacked(t, s2); !slices.Equal(got, want) {
		t.Fatalf("after reopen unacked = %v, want %v", got, want)
	}
	if s2.LastID() != 10 {
		t.Fatalf("after reopen LastID = %d, want 10", s2.LastID())
	}
	if id, err := s2.Append(payload(11)); err != nil || id != 11 {
		t.Fatalf("append after reopen = %d, %v; want 11", id, err)
	}
}

func TestSegmentRolloverAndDeletion(t *testing.T) {
	dir := t.TempDir()
	frame := int64(headerSize + len(payload(1)))
	opts := Options{SegmentBytes: 2 * frame} // two records per segment
	s := openT(t, dir, opts)
	appendN(t, s, 9)
	if got := len(segFiles(t, dir)); got != 5 {
		t.Fatalf("9 records at 2 per segment made %d segment files, want 5", got)
	}
	// Ack the first two segments out of order; one record of the third.
	if err := s.Ack(4, 1, 3, 5); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(2); err != nil {
		t.Fatal(err)
	}
	files := segFiles(t, dir)
	if len(files) != 3 || filepath.Base(files[0]) != segName(5)+segExt {
		t.Fatalf("after acking ids 1-5 the segments are %v, want the three from id 5", files)
	}
	if _, err := os.Stat(filepath.Join(dir, segName(1)+ackExt)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ack log of a deleted segment is still there: %v", err)
	}
	// Ack everything: the active segment stays so ids keep rising.
	if err := s.Ack(6, 7, 8, 9); err != nil {
		t.Fatal(err)
	}
	if files := segFiles(t, dir); len(files) != 1 {
		t.Fatalf("all acked: segments %v, want only the active one", files)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, dir, opts)
	if got := unacked(t, s2); len(got) != 0 {
		t.Fatalf("after reopen unacked = %v, want none", got)
	}
	if id, err := s2.Append(payload(10)); err != nil || id != 10 {
		t.Fatalf("append after everything was acked = %d, %v; want 10", id, err)
	}
}

func TestMaxBytesDropsOldestAndCounts(t *testing.T) {
	dir := t.TempDir()
	log, logs := observed()
	frame := int64(headerSize + len(payload(1)))
	opts := Options{SegmentBytes: 2 * frame, MaxBytes: 8 * frame, Logger: log}
	s := openT(t, dir, opts)
	appendN(t, s, 4)
	if err := s.Ack(1, 2); err != nil { // an acked segment dropped is no loss
		t.Fatal(err)
	}
	appendN(t, s, 16) // ids 5..20
	if s.DiskBytes() > opts.MaxBytes {
		t.Fatalf("disk bytes %d over MaxBytes %d", s.DiskBytes(), opts.MaxBytes)
	}
	got := unacked(t, s)
	if len(got) == 0 || got[len(got)-1] != 20 {
		t.Fatalf("unacked = %v, want the newest records up to 20", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("unacked %v has a hole: the oldest must go first", got)
		}
	}
	// Everything appended minus what is left minus the two acked.
	if want := uint64(20 - len(got) - 2); s.Dropped() != want || want == 0 {
		t.Fatalf("Dropped = %d, want %d (and more than 0)", s.Dropped(), want)
	}
	if n := logs.FilterMessageSnippet("queue full").Len(); n == 0 {
		t.Fatal("records were dropped without a log line")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, dir, opts)
	if again := unacked(t, s2); !slices.Equal(again, got) {
		t.Fatalf("after reopen unacked = %v, want %v", again, got)
	}
}

func TestOversizeRecordsRefused(t *testing.T) {
	s := openT(t, t.TempDir(), Options{SegmentBytes: 1024, MaxBytes: 4096})
	if _, err := s.Append(make([]byte, 5000)); err == nil || !strings.Contains(err.Error(), "over MaxBytes") {
		t.Fatalf("record over MaxBytes: got %v", err)
	}
	if _, err := s.Append(make([]byte, MaxRecordBytes+1)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("record over MaxRecordBytes: got %v", err)
	}
	// A record larger than a segment still fits in a segment of its own.
	id, err := s.Append(make([]byte, 2000))
	if err != nil || id != 1 {
		t.Fatalf("record over SegmentBytes: %d, %v", id, err)
	}
	// A batch larger than MaxBytes keeps its newest records.
	batch := make([][]byte, 10)
	for i := range batch {
		batch[i] = make([]byte, 1000)
	}
	if _, err := s.AppendBatch(batch); err != nil {
		t.Fatalf("batch over MaxBytes: %v", err)
	}
	if s.DiskBytes() > 4096 || s.LastID() != 11 {
		t.Fatalf("disk bytes %d (max 4096), last id %d (want 11)", s.DiskBytes(), s.LastID())
	}
	// Frames of 1024 bytes, one per segment: four fit, ids 8 to 11.
	if r, err := s.Peek(); err != nil || r.ID != 8 {
		t.Fatalf("oldest kept = %d, %v; want 8, the oldest of the four newest", r.ID, err)
	}
}

func TestBadOptionsAndLock(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, Options{SegmentBytes: 10}); err == nil {
		t.Fatal("SegmentBytes 10 accepted")
	}
	if _, err := Open(dir, Options{SegmentBytes: 1 << 20, MaxBytes: 1 << 10}); err == nil {
		t.Fatal("MaxBytes below SegmentBytes accepted")
	}
	openT(t, dir, Options{})
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open of a queue in use: got %v", err)
	}
}

func TestTornTailTruncatedEarlierRecordsSurvive(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(t *testing.T, path string)
		survive int
	}{
		{"half a header", func(t *testing.T, p string) { appendBytes(t, p, []byte{9, 0, 0}) }, 5},
		{"header without payload", func(t *testing.T, p string) {
			h := make([]byte, headerSize+100)
			putFrame(h, 6, time.Now(), make([]byte, 100))
			appendBytes(t, p, h[:headerSize+40])
		}, 5},
		{"garbage", func(t *testing.T, p string) { appendBytes(t, p, []byte(strings.Repeat("\xff\x13garbage", 50))) }, 5},
		{"huge length", func(t *testing.T, p string) { appendBytes(t, p, []byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4}) }, 5},
		{"last record flipped", func(t *testing.T, p string) { flipLastByte(t, p) }, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, Options{})
			appendN(t, s, 5)
			if err := s.Ack(2); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			files := segFiles(t, dir)
			c.damage(t, files[len(files)-1])

			log, logs := observed()
			s2 := openT(t, dir, Options{Logger: log})
			var want []uint64
			for id := uint64(1); id <= uint64(c.survive); id++ {
				if id != 2 {
					want = append(want, id)
				}
			}
			if got := unacked(t, s2); !slices.Equal(got, want) {
				t.Fatalf("after repair unacked = %v, want %v", got, want)
			}
			if logs.FilterMessageSnippet("truncated").Len() == 0 {
				t.Fatal("a torn tail was repaired without a log line")
			}
			next := uint64(c.survive + 1)
			if id, err := s2.Append(payload(next)); err != nil || id != next {
				t.Fatalf("append after repair = %d, %v; want %d", id, err, next)
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			s3 := openT(t, dir, Options{})
			if got := unacked(t, s3); !slices.Equal(got, append(want, next)) {
				t.Fatalf("second reopen unacked = %v, want %v", got, append(want, next))
			}
		})
	}
}

func TestCorruptSealedSegmentKeepsOthers(t *testing.T) {
	dir := t.TempDir()
	frame := int64(headerSize + len(payload(1)))
	opts := Options{SegmentBytes: 2 * frame}
	s := openT(t, dir, opts)
	appendN(t, s, 6) // segments 1-2, 3-4, 5-6
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	flipLastByte(t, segFiles(t, dir)[1]) // record 4
	log, logs := observed()
	s2 := openT(t, dir, Options{SegmentBytes: opts.SegmentBytes, Logger: log})
	if got, want := unacked(t, s2), []uint64{1, 2, 3, 5, 6}; !slices.Equal(got, want) {
		t.Fatalf("unacked = %v, want %v", got, want)
	}
	if logs.FilterLevelExact(zapcore.ErrorLevel).Len() == 0 {
		t.Fatal("loss inside a sealed segment was not logged as an error")
	}
	if id, _ := s2.Append(payload(7)); id != 7 {
		t.Fatalf("next id = %d, want 7", id)
	}
}

func TestTornAckLogTail(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	appendN(t, s, 4)
	if err := s.Ack(1, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	appendBytes(t, filepath.Join(dir, segName(1)+ackExt), []byte{2, 0, 0, 0, 0}) // half an entry
	s2 := openT(t, dir, Options{})
	if got, want := unacked(t, s2), []uint64{2, 4}; !slices.Equal(got, want) {
		t.Fatalf("unacked = %v, want %v", got, want)
	}
	if err := s2.Ack(4); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3 := openT(t, dir, Options{})
	if got, want := unacked(t, s3), []uint64{2}; !slices.Equal(got, want) {
		t.Fatalf("after an ack behind the repaired tail: unacked = %v, want %v", got, want)
	}
}

func TestCorruptionAfterOpenIsReported(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	appendN(t, s, 2)
	flipLastByte(t, segFiles(t, dir)[0])
	if _, err := s.NextUnacked(1); err == nil {
		t.Fatal("a corrupt record was returned as good")
	} else if ce := (*CorruptError)(nil); !errors.As(err, &ce) || ce.ID != 2 {
		t.Fatalf("got %v, want a CorruptError for record 2", err)
	}
	if err := s.Ack(2); err != nil {
		t.Fatal(err)
	}
	if got := unacked(t, s); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("unacked = %v, want [1]", got)
	}
}

func TestOldestAge(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 1, 1, 3, 0, 0, 0, time.UTC)}
	s := openT(t, t.TempDir(), Options{Now: clock.Now})
	if s.OldestAge() != 0 {
		t.Fatal("an empty queue has an age")
	}
	appendN(t, s, 1)
	clock.Add(time.Minute)
	appendN(t, s, 1)
	clock.Add(time.Minute)
	if got := s.OldestAge(); got != 2*time.Minute {
		t.Fatalf("oldest age = %v, want 2m", got)
	}
	if err := s.Ack(1); err != nil {
		t.Fatal(err)
	}
	if got := s.OldestAge(); got != time.Minute {
		t.Fatalf("oldest age after acking the oldest = %v, want 1m", got)
	}
}

// TestOneWriterOneReader runs an appender against a reader that acks out
// of order; under -race this checks the locking.
func TestOneWriterOneReader(t *testing.T) {
	frame := int64(headerSize + len(payload(1)))
	s := openT(t, t.TempDir(), Options{SegmentBytes: 16 * frame, MaxBytes: 1 << 20})
	const total = 600
	done := make(chan error, 1)
	go func() {
		for i := uint64(1); i <= total; i += 3 {
			if _, err := s.AppendBatch([][]byte{payload(i), payload(i + 1), payload(i + 2)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	seen := map[uint64]bool{}
	var after uint64
	deadline := time.After(60 * time.Second)
	for len(seen) < total {
		r, err := s.NextUnacked(after)
		if errors.Is(err, ErrEmpty) {
			select {
			case <-s.Appended():
			case <-time.After(100 * time.Millisecond):
			case <-deadline:
				t.Fatalf("reader saw %d of %d records", len(seen), total)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if seen[r.ID] || string(r.Data) != string(payload(r.ID)) {
			t.Fatalf("record %d seen twice or wrong: %q", r.ID, r.Data)
		}
		seen[r.ID] = true
		after = r.ID
		if r.ID%2 == 0 && r.ID > 1 { // ack pairs backwards
			if err := s.Ack(r.ID, r.ID-1); err != nil {
				t.Fatal(err)
			}
		}
		_, _ = s.Depth()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Depth(); n != 0 {
		t.Fatalf("depth after acking all = %d", n)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flipLastByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x5a
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
