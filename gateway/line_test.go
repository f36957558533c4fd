package gateway

import (
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/site"
)

func TestLineFairness(t *testing.T) {
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	healthy := &deviceState{dev: &site.Device{ID: "u1"}, interval: time.Second, timeout: time.Second, next: now.Add(300 * time.Millisecond)}
	absent := &deviceState{dev: &site.Device{ID: "u2"}, interval: time.Second, timeout: time.Second, fails: 3, next: now}
	l := &line{units: []*deviceState{healthy, absent}}
	// u1 is due in 300 ms and may start up to half its interval late: a
	// 1 s probe of u2 now would end 200 ms past that.
	if l.fits(absent, now) {
		t.Error("a 1s probe fits 300ms before the healthy unit is due (+500ms)")
	}
	// Right after u1's poll, with u1 next due in 950 ms, it fits.
	healthy.next = now.Add(950 * time.Millisecond)
	if !l.fits(absent, now) {
		t.Error("a 1s probe does not fit 950ms before the healthy unit is due (+500ms)")
	}
	// An absent unit is no deadline for anyone.
	if !l.fits(healthy, now) || !l.deadline(healthy).IsZero() {
		t.Error("the absent unit constrains the healthy one")
	}
	// At equal due times the healthy unit goes first.
	healthy.next, absent.next = now, now
	if l.pick() != healthy {
		t.Error("the absent unit picked before the healthy one due at the same time")
	}
}

func TestLinesGroupUnitsAndTakeTheLargestPause(t *testing.T) {
	devs := []*deviceState{
		{dev: &site.Device{ID: "a", Transport: site.TransportRTU, Serial: &site.Serial{Port: "/dev/ttyS1"}, PauseBetweenRequests: site.Duration(10 * time.Millisecond)}},
		{dev: &site.Device{ID: "b", Transport: site.TransportRTU, Serial: &site.Serial{Port: "/dev/ttyS1"}, PauseBetweenRequests: site.Duration(30 * time.Millisecond)}},
		{dev: &site.Device{ID: "c", Transport: site.TransportRTUOverTCP, Address: "10.0.0.5:4001"}},
		{dev: &site.Device{ID: "d", Transport: site.TransportRTUOverTCP, Address: "10.0.0.5:4001"}},
		{dev: &site.Device{ID: "e", Transport: site.TransportTCP, Address: "10.0.0.6:502"}},
		{dev: &site.Device{ID: "f", Transport: site.TransportTCP, Address: "10.0.0.6:502"}},
	}
	ls := newLines(devs)
	if len(ls) != 4 {
		t.Fatalf("%d lines, want 4 (one serial port, one device server, two TCP devices)", len(ls))
	}
	if len(ls[0].units) != 2 || ls[0].pause != 30*time.Millisecond {
		t.Errorf("serial line: %d units, pause %v; want 2 and the largest, 30ms", len(ls[0].units), ls[0].pause)
	}
	if len(ls[1].units) != 2 || ls[2].units[0].dev.ID != "e" || ls[3].units[0].dev.ID != "f" {
		t.Errorf("lines %+v", ls)
	}
}
