package link

import (
	"encoding/binary"
	"time"
)

// TimestampSize is the size of a TAI64N timestamp.
const TimestampSize = 12

const (
	tai64Base = 0x400000000000000a // TAI64 label of 1970-01-01 00:00:10 TAI (= Unix 0 UTC)
	// whitenerMask clears the low 24 bits of the nanoseconds (≈16.8 ms
	// granularity), as WireGuard does, so initiations do not leak a
	// precise clock reading.
	whitenerMask = uint32(0x1000000 - 1)
)

// Timestamp encodes t as TAI64N (seconds label(8) || nanoseconds(4), both
// big-endian) with whitened nanoseconds. Later times compare greater with
// bytes.Compare.
func Timestamp(t time.Time) [TimestampSize]byte {
	var ts [TimestampSize]byte
	binary.BigEndian.PutUint64(ts[:8], uint64(tai64Base+t.Unix()))
	binary.BigEndian.PutUint32(ts[8:], uint32(t.Nanosecond())&^whitenerMask)
	return ts
}

// timestampTime decodes a TAI64N timestamp (for comparisons with now).
func timestampTime(ts [TimestampSize]byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(ts[:8]) - tai64Base)
	return time.Unix(sec, int64(binary.BigEndian.Uint32(ts[8:])%1e9))
}
