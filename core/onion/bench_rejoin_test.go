package onion

import "testing"

// BenchmarkServerCreateIndexed is BenchmarkServerCreate plus the circuit's
// first rejoin point, which the node computes for its rejoin index on
// every CREATE: the difference is what the index adds to a CREATE.
func BenchmarkServerCreateIndexed(b *testing.B) {
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
		if _, err := NewRelay(k).RejoinPoint(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRejoinAccept is the exit's side of a rejoin (check the point,
// a fresh Y, the auth, the next point), to compare with
// BenchmarkServerCreate: the hop that carries a CREATE sees how long the
// answer takes.
func BenchmarkRejoinAccept(b *testing.B) {
	c := newCircuit(b, 1)
	r := c.relays[0]
	if err := c.path.SetAside(0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		msg, err := c.path.RejoinMessage([32]byte{1}, [32]byte{2})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		reply, _, err := r.AcceptRejoin(nil, msg)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := c.path.Rejoin(reply); err != nil {
			b.Fatal(err)
		}
		if err := c.path.SetAside(0); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
