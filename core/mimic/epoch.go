package mimic

import (
	"math"
	"math/bits"
	"time"
)

// Epoch returns floor(unix time / length): the epoch t falls in. Mimic sets
// change once per epoch. Times before 1970 are epoch 0. A non-positive
// length is treated as one nanosecond so that a bad configuration cannot
// panic (the configuration layer rejects it first).
func Epoch(t time.Time, length time.Duration) uint64 {
	if length <= 0 {
		length = 1
	}
	sec := t.Unix()
	if sec < 0 {
		return 0
	}
	// Unix nanoseconds overflow int64 after 2262; compute them in 128 bits.
	hi, lo := bits.Mul64(uint64(sec), uint64(time.Second))
	lo, carry := bits.Add64(lo, uint64(t.Nanosecond()), 0)
	hi += carry
	if hi >= uint64(length) {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, uint64(length))
	return q
}
