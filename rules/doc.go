// Package rules turns readings into graded warnings. It is a pure,
// deterministic state machine in the manner of etcd's raft: callers feed it
// readings and clock ticks, each with its time, and carry out the events it
// returns. It does no I/O, starts no goroutines and never reads the wall
// clock, so it is tested with a fake clock, fuzzed and benchmarked on its
// own. An Engine is not safe for concurrent use; callers serialize.
//
// Conditions of a point: H, HH, L, LL with deadband, on-delay and off-delay;
// rate of change; stale data; sensor fault; stuck value. Conditions of a
// hazard source: k-of-n votes and several points at first or second level.
// Every active condition is graded red/orange/yellow/blue by the source's
// effective site.Policy; a source's grade is its most severe condition's.
// When HH is active, H stays active too: one alarm per point and level, and
// the point's grade is the most severe of them. A raise that is a
// condition's third within a minute is flagged as chattering (ISA-18.2).
// After a restart, Restore takes over the alarm journal's active conditions
// so that none is forgotten or raised anew. docs/rules.md has the
// details and the defaults with their sources.
package rules
