package mqttconn

import "time"

// Backoff is the wait before a connection attempt: none before the first
// connection, a random part of Min before the first attempt after a lost
// connection (so a fleet does not reconnect in step when the broker comes
// back), then doubling from Min to Max with "equal jitter" (half fixed,
// half random) for each further failed attempt.
type Backoff struct {
	Min, Max time.Duration
}

// Delay is the wait before attempt (0 first) of a connection (reconnect
// false) or a reconnection; rnd is a random number in [0, 1).
func (b Backoff) Delay(reconnect bool, attempt int, rnd float64) time.Duration {
	if attempt <= 0 {
		if !reconnect {
			return 0
		}
		return time.Duration(rnd * float64(b.Min))
	}
	d := b.Min
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + time.Duration(rnd*float64(d/2))
}
