package link

import (
	"crypto/rand"
	"testing"
)

func BenchmarkSeal(b *testing.B) {
	a, c := newPeer(b, 1), newPeer(b, 2)
	ia, _ := pair(b, a, c, t0, newDetRand("bench"))
	ia.now = nil // the default: real elapsed time, as a node without SetClock
	p := payload(1)
	frame := make([]byte, FrameSize)
	b.SetBytes(PayloadSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ia.Seal(frame, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealParallel(b *testing.B) {
	a, c := newPeer(b, 1), newPeer(b, 2)
	ia, _ := pair(b, a, c, t0, newDetRand("bench"))
	ia.now = nil
	p := payload(1)
	b.SetBytes(PayloadSize)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		frame := make([]byte, FrameSize)
		for pb.Next() {
			if _, err := ia.Seal(frame, p); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkOpen(b *testing.B) {
	a, c := newPeer(b, 1), newPeer(b, 2)
	ia, rb := pair(b, a, c, t0, newDetRand("bench"))
	rb.now = nil
	p := payload(1)
	// Pre-seal a batch so Open's replay window sees fresh counters; the
	// batch is re-sealed outside the timer when used up.
	const batch = 4096
	frames := make([][]byte, batch)
	for i := range frames {
		frames[i] = make([]byte, FrameSize)
	}
	reseal := func() {
		for i := range frames {
			ia.Seal(frames[i], p)
		}
	}
	reseal()
	out := make([]byte, PayloadSize)
	b.SetBytes(PayloadSize)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == batch {
			b.StopTimer()
			reseal()
			i = 0
			b.StartTimer()
		}
		if _, err := rb.Open(out, frames[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkHandshake(b *testing.B) {
	a, c := newPeer(b, 1), newPeer(b, 2)
	look := admit(a, [12]byte{})
	b.ReportAllocs()
	var idx uint32
	for b.Loop() {
		idx++
		h, init, err := Initiate(a.static, a.id.ID(), c.static.Public, idx, rand.Reader, t0)
		if err != nil {
			b.Fatal(err)
		}
		_, resp, _, _, err := Respond(c.static, init, idx, rand.Reader, t0, look)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := h.Finish(resp, t0); err != nil {
			b.Fatal(err)
		}
	}
}
