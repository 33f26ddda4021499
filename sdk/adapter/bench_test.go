package adapter_test

import (
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

var sink []byte

// BenchmarkCopyInnerMTU is what headroom in ReadPackets could have saved
// the core per copy of a packet (D30): compare with core/onion's
// BenchmarkSeal3Hops, run side by side.
func BenchmarkCopyInnerMTU(b *testing.B) {
	src, dst := make([]byte, adapter.InnerMTU), make([]byte, 2048)
	b.SetBytes(adapter.InnerMTU)
	for b.Loop() {
		copy(dst[64:], src)
	}
	sink = dst
}
