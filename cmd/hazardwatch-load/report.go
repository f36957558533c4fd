package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// report is the outcome of one run.
type report struct {
	Sent          int64 // readings published
	Stored        int64 // distinct readings stored
	Lost          int64 // sent but never stored
	Duplicated    int64 // extra copies stored
	Rejected      int64 // readings or messages the centre refused
	Unexpected    int64 // stored readings this run never sent
	PublishErrors int64 // messages the broker did not acknowledge
	// GapMessages is how many messages ingest found missing from the
	// gateways' seq: lost before ingest, e.g. dropped by the broker.
	GapMessages int64

	Publishing time.Duration // from the first send to the last
	Elapsed    time.Duration // from the first send to the last store
	SendRate   float64       // readings per second offered
	StoreRate  float64       // readings per second stored
	Procs      int           // GOMAXPROCS

	P50, P90, P99, Max time.Duration // reading time → stored
	LatencyNote        string        // how latency was measured

	CPU       time.Duration // user+system CPU time of the process during the run
	PeakRSSKB int64         // VmHWM

	// With -target: the centre's address, its CPU time during the run and
	// the largest resident set seen (from its /metrics).
	Remote        string
	CentreCPU     time.Duration
	CentrePeakRSS int64

	// Alarms is what the alarm probes measured (-alarm-probes); nil
	// without them.
	Alarms *alarmReport
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "sent        %d readings in %v (%.0f/s offered)\n", r.Sent, r.Publishing.Round(time.Millisecond), r.SendRate)
	if r.Remote != "" {
		fmt.Fprintf(w, "stored      %d distinct readings (counted through %s/api/points/counts), last after %v: %.0f readings/s\n",
			r.Stored, r.Remote, r.Elapsed.Round(time.Millisecond), r.StoreRate)
	} else {
		fmt.Fprintf(w, "stored      %d distinct readings, last after %v: %.0f readings/s, %.0f/s per core (GOMAXPROCS %d)\n",
			r.Stored, r.Elapsed.Round(time.Millisecond), r.StoreRate, r.StoreRate/float64(r.Procs), r.Procs)
	}
	fmt.Fprintf(w, "lost        %d\n", r.Lost)
	switch {
	case r.GapMessages > 0:
		fmt.Fprintf(w, "            the broker dropped them: the centre found %d messages missing from the gateways' seq, which the broker had acknowledged to the publishers (its max_queued_messages?)\n", r.GapMessages)
	case r.Lost > 0:
		fmt.Fprintf(w, "            not dropped by the broker (no seq gaps at the centre): still in flight, or lost in the centre\n")
	}
	fmt.Fprintf(w, "duplicated  %d\n", r.Duplicated)
	fmt.Fprintf(w, "rejected    %d\n", r.Rejected)
	if r.Unexpected > 0 {
		fmt.Fprintf(w, "unexpected  %d (stored readings this run did not send)\n", r.Unexpected)
	}
	if r.PublishErrors > 0 {
		fmt.Fprintf(w, "pub errors  %d messages not acknowledged by the broker\n", r.PublishErrors)
	}
	if r.Remote == "" {
		fmt.Fprintf(w, "latency     p50 %v  p90 %v  p99 %v  max %v  (%s)\n",
			ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max), r.LatencyNote)
	}
	if r.CPU > 0 {
		perCPUSecond := float64(r.Stored) / r.CPU.Seconds()
		fmt.Fprintf(w, "cpu         %.1fs user+sys in %.1fs = %.2f cores busy; %.0f readings per CPU-second (this process only, not the broker)\n",
			r.CPU.Seconds(), r.Elapsed.Seconds(), r.CPU.Seconds()/r.Elapsed.Seconds(), perCPUSecond)
	}
	if r.PeakRSSKB > 0 {
		fmt.Fprintf(w, "peak RSS    %d MiB\n", r.PeakRSSKB/1024)
	}
	if r.Remote != "" && r.CentreCPU > 0 {
		fmt.Fprintf(w, "centre cpu  %.1fs in %.1fs = %.2f cores busy; %.1f CPU-s per 1 M readings (hazardwatch-ingest only)\n",
			r.CentreCPU.Seconds(), r.Elapsed.Seconds(), r.CentreCPU.Seconds()/r.Elapsed.Seconds(), r.CentreCPU.Seconds()/float64(max(r.Stored, 1))*1e6)
	}
	if r.CentrePeakRSS > 0 {
		fmt.Fprintf(w, "centre RSS  %d MiB at most (sampled every 250 ms)\n", r.CentrePeakRSS>>20)
	}
	if r.Alarms != nil {
		r.Alarms.print(w)
	}
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSSKB reads VmHWM, the process's peak resident set, from
// /proc/self/status; 0 where there is no /proc.
func peakRSSKB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}
