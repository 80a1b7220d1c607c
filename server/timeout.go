package server

import (
	"math"
	"time"
)

// maxRequestSeconds is the longest timeout a request can ask for that a
// time.Duration still holds (about 292 years).
const maxRequestSeconds = int64(math.MaxInt64 / int64(time.Second))

// requestTimeout turns a request's timeout in seconds into a Duration,
// clamped: a product that overflowed would wrap to a negative or a tiny
// duration, so a "wait for ever" StopContainer would kill at once. A
// negative timeout is zero.
func requestTimeout(seconds int64) time.Duration {
	return time.Duration(min(max(seconds, 0), maxRequestSeconds)) * time.Second
}
