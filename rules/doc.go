// Package rules turns readings into graded warnings. It is a pure,
// deterministic state machine in the manner of etcd's raft: callers feed it
// readings and clock ticks, each with its time, and carry out the events it
// returns. It does no I/O and never reads the wall clock, so it is tested
// with a fake clock, fuzzed and benchmarked on its own.
package rules
