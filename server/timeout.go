package server

import (
	"math"
	"time"
)

// MaxMessageSize is the largest gRPC message berthd sends or receives.
const MaxMessageSize = 16 << 20

// maxExecOutput is the most ExecSync output that fits in one response
// with room for the rest of the message.
const maxExecOutput = MaxMessageSize - 4<<10

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
