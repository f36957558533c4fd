package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// progressEvery is how often a progress line is printed.
const progressEvery = 5 * time.Second

// fleet is the simulated gateways of one run.
type fleet struct {
	pubs []*publisher
}

// connectFleet connects one MQTT client per gateway, a few at a time.
func connectFleet(ctx context.Context, o options, l *ledger, id string) (*fleet, error) {
	interval := time.Duration(float64(time.Second) / o.rate)
	f := &fleet{}
	for g := range o.gateways {
		p, err := newPublisher(o.mqtt, o.siteID, g, o.points, interval, l, id)
		if err != nil {
			return nil, err
		}
		f.pubs = append(f.pubs, p)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	errs := make(chan error, len(f.pubs))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, p := range f.pubs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := p.connect(cctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		f.close()
		return nil, fmt.Errorf("connect simulated gateways to %s: %w", o.mqtt.Redacted(), err)
	}
	return f, nil
}

func (f *fleet) close() {
	for _, p := range f.pubs {
		p.close()
	}
}

func (f *fleet) sent() int64 {
	var n int64
	for _, p := range f.pubs {
		n += p.sentReadings.Load()
	}
	return n
}

// publish runs every gateway for d, their first messages spread over one
// interval so they do not arrive in lockstep, printing a progress line
// every progressEvery; it returns when every message is acknowledged or
// has failed.
func (f *fleet) publish(ctx context.Context, d time.Duration, stdout io.Writer, stored func() (int64, time.Duration)) {
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range f.pubs {
		offset := p.interval * time.Duration(i) / time.Duration(len(f.pubs))
		wg.Go(func() { p.run(pctx, offset) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	start := time.Now()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			printProgress(stdout, time.Since(start), f.sent(), stored)
		}
	}
}

func printProgress(w io.Writer, elapsed time.Duration, sent int64, stored func() (int64, time.Duration)) {
	n, lag := stored()
	fmt.Fprintf(w, "  %5.0fs  sent %10d  stored %10d  backlog %8d  lag max %v\n",
		elapsed.Seconds(), sent, n, sent-n, lag.Round(time.Millisecond))
}
