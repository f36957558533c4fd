package queue

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// crashDirEnv makes the test binary run crashChild instead of the tests.
const crashDirEnv = "HAZARDWATCH_SPOOL_CRASH_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashChild appends as fast as it can, printing "A id" once Append (or
// AppendBatch) returned and "K id" once Ack returned, until it is killed.
func crashChild(dir string) {
	s, err := Open(dir, Options{SegmentBytes: 32 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	out := os.Stdout // unbuffered: each line is one write
	for i := 0; ; i++ {
		next := s.LastID() + 1
		var ids []uint64
		if i%7 == 0 { // group commit mixed in
			batch := [][]byte{payload(next), payload(next + 1), payload(next + 2), payload(next + 3)}
			first, err := s.AppendBatch(batch)
			if err != nil {
				fmt.Fprintln(os.Stderr, "child append batch:", err)
				os.Exit(2)
			}
			ids = []uint64{first, first + 1, first + 2, first + 3}
		} else {
			id, err := s.Append(payload(next))
			if err != nil {
				fmt.Fprintln(os.Stderr, "child append:", err)
				os.Exit(2)
			}
			ids = []uint64{id}
		}
		for _, id := range ids {
			fmt.Fprintf(out, "A %d\n", id)
		}
		for _, id := range ids {
			if id%3 == 0 {
				if err := s.Ack(id); err != nil {
					fmt.Fprintln(os.Stderr, "child ack:", err)
					os.Exit(2)
				}
				fmt.Fprintf(out, "K %d\n", id)
			}
		}
	}
}

// TestCrashKeepsEveryAppendedRecord kills a writing process with SIGKILL
// twice and checks that every record whose Append had returned is there,
// in order, once, and that acknowledged ones stay acknowledged.
func TestCrashKeepsEveryAppendedRecord(t *testing.T) {
	dir := t.TempDir()
	appended := map[uint64]bool{}
	acked := map[uint64]bool{}
	for round := range 2 {
		runAndKill(t, dir, 400*(round+1), appended, acked)
	}
	s := openT(t, dir, Options{SegmentBytes: 32 << 10})
	got := map[uint64]bool{}
	var after uint64
	for {
		r, err := s.NextUnacked(after)
		if errors.Is(err, ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatalf("read back after crashes: %v", err)
		}
		if r.ID <= after {
			t.Fatalf("record %d came after %d: out of order", r.ID, after)
		}
		if string(r.Data) != string(payload(r.ID)) {
			t.Fatalf("record %d holds %q: another record's payload, so something was duplicated or lost", r.ID, r.Data)
		}
		got[r.ID] = true
		after = r.ID
	}
	var missing []uint64
	for id := range appended {
		// The child acks every id divisible by 3 right after appending; a
		// kill between Ack and its "K" line leaves it acked but unreported.
		mayBeAcked := acked[id] || id%3 == 0
		if !mayBeAcked && !got[id] {
			missing = append(missing, id)
		}
		if acked[id] && got[id] {
			t.Errorf("record %d was acknowledged before the crash but came back", id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d records whose Append returned are missing, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	if len(appended) < 800 {
		t.Fatalf("children appended only %d records", len(appended))
	}
	t.Logf("%d records appended over two crashes, %d acked, %d unacked read back", len(appended), len(acked), len(got))
}

// runAndKill starts a child on dir, SIGKILLs it once it reported at least
// killAfter appends, and records what it reported.
func runAndKill(t *testing.T, dir string, killAfter int, appended, acked map[uint64]bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start crash child: %v", err)
	}
	timer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	sc := bufio.NewScanner(out)
	count, killed := 0, false
	for sc.Scan() {
		kind, num, ok := strings.Cut(sc.Text(), " ")
		id, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil {
			continue // a line cut by the kill
		}
		switch kind {
		case "A":
			if appended[id] {
				t.Errorf("id %d was handed out twice", id)
			}
			appended[id] = true
			count++
		case "K":
			acked[id] = true
		}
		if count >= killAfter && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL mid-stream
				t.Fatalf("kill child: %v", err)
			}
			killed = true // keep reading what it printed before dying
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("crash child ended by itself after %d appends: %s", count, stderr.String())
	}
}
