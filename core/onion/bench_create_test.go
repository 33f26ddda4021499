package onion

import "testing"

// BenchmarkServerCreate is what a relay's CREATE costs in this package:
// the server side of the handshake and the circuit's relay state.
func BenchmarkServerCreate(b *testing.B) {
	n := newTestNode(b, "bench")
	_, msg, err := NewClientHandshake(nil, n.id, n.pub)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, k, err := ServerHandshake(nil, n.id, n.keys, msg)
		if err != nil {
			b.Fatal(err)
		}
		NewRelay(k)
	}
}
