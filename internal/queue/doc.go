// Package queue is a durable store-and-forward queue: an
// append-only, segmented log on disk that every outgoing message passes
// through, and leaves only once it was acknowledged.
//
// Guarantees:
//   - Append and AppendBatch return only after the records are written and
//     fsynced; a record whose Append returned survives kill -9 and a power
//     cut. AppendBatch shares one fsync among all its records (group commit).
//   - Every record gets an id one above the previous one, across restarts.
//     Ids are never reused, even after every segment was acknowledged.
//   - Each record is framed with its length, a CRC32-C, its id and its
//     append time. On Open a torn or corrupt tail (a power cut mid-write) is
//     detected, logged and truncated; records before it are kept. Open never
//     panics on a damaged file.
//   - Records may be acknowledged in any order. Acknowledged ids are kept
//     durably (fsynced) in an ack log beside each segment, so a reopened
//     queue yields only the records not yet acknowledged. A segment's files
//     are deleted only when all its records are acknowledged.
//   - The queue is bounded: when appending would take the segment files over
//     MaxBytes, whole oldest segments are dropped, acknowledged or not. Each
//     record dropped unacknowledged is counted (Dropped) and logged; Append
//     never blocks waiting for room.
//   - No global state. One writer goroutine (Append, AppendBatch) and one
//     reader goroutine (NextUnacked, Peek, Ack) may work at once; the
//     accessors (Depth, OldestAge, Dropped, LastID) are safe from any
//     goroutine. A lock file keeps a second process out of the directory.
//
// Options and their defaults:
//   - SegmentBytes: a segment file is sealed and a new one started when the
//     next record would take it past this size; default 16 MiB (at most 1 GiB).
//   - MaxBytes: bound on the bytes of all segment files; default 512 MiB.
//     Must be at least SegmentBytes. The ack logs add 12 bytes per
//     acknowledged record on top.
//   - Logger: where torn tails, dropped records and deletions are reported;
//     default a no-op logger.
//   - Now: the clock that stamps records; default time.Now.
//
// A record's payload may be at most MaxRecordBytes.
//
// On disk, directory dir holds LOCK, and per segment NNNNNNNNNNNNNNNNNNNN.seg
// (frames) and NNNNNNNNNNNNNNNNNNNN.ack (acknowledged ids), named after the
// segment's first id. A frame is a 24-byte header — payload length (uint32),
// CRC32-C of length, id, time and payload (uint32), id (uint64), append time
// in Unix nanoseconds (int64), all little-endian — then the payload. An ack
// entry is the id (uint64) and its CRC32-C (uint32).
package queue
