package link

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestDataReplayAndReorder(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	ia, rb := pair(t, a, b, t0, newDetRand("data"))
	frames := make([][]byte, 5)
	for i := range frames {
		f, err := ia.Seal(nil, payload(byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		frames[i] = f
	}
	steps := []struct {
		frame int
		want  error
	}{
		{0, nil},
		{3, nil}, // jump ahead
		{1, nil}, // out of order, inside the window
		{3, ErrReplay},
		{2, nil},
		{0, ErrReplay},
		{4, nil},
		{4, ErrReplay},
	}
	for i, st := range steps {
		got, err := rb.Open(nil, frames[st.frame])
		if !errors.Is(err, st.want) {
			t.Fatalf("step %d (frame %d): err = %v, want %v", i, st.frame, err, st.want)
		}
		if err == nil && !bytes.Equal(got, payload(byte(st.frame))) {
			t.Fatalf("step %d: payload differs", i)
		}
	}
}

func TestReplayWindowEdges(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	ia, rb := pair(t, a, b, t0, newDetRand("window"))
	sealAt := func(n uint64) []byte {
		ia.sendCounter.Store(n)
		f, err := ia.Seal(nil, payload(1))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	old := sealAt(5)
	edge := sealAt(100)
	tooOld := sealAt(99)
	newest := sealAt(100 + ReplayWindow)
	if _, err := rb.Open(nil, newest); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Open(nil, edge); err != nil {
		t.Fatalf("counter exactly ReplayWindow behind refused: %v", err)
	}
	for name, f := range map[string][]byte{"one past the window": tooOld, "far behind": old} {
		if _, err := rb.Open(nil, f); !errors.Is(err, ErrReplay) {
			t.Fatalf("%s: err = %v, want ErrReplay", name, err)
		}
	}
	if ReplayWindow < 2048 {
		t.Fatalf("ReplayWindow %d < 2048", ReplayWindow)
	}
}

func TestReplayWindowModel(t *testing.T) {
	// Compare the ring against a plain map over a pseudo-random walk.
	var w replayWindow
	seen := map[uint64]bool{}
	var last uint64
	r := newDetRand("model")
	var buf [4]byte
	for i := 0; i < 20000; i++ {
		r.Read(buf[:])
		delta := int64(buf[0])<<8 | int64(buf[1])
		var n uint64
		if buf[2]&1 == 0 {
			n = last + uint64(delta%300)
		} else if d := uint64(delta % (ReplayWindow + 200)); d <= last {
			n = last - d
		}
		want := !seen[n] && (n > last || last-n <= ReplayWindow)
		if got := w.check(n); got != want {
			t.Fatalf("step %d counter %d (last %d): got %v want %v", i, n, last, got, want)
		}
		if want {
			seen[n] = true
			if n > last {
				last = n
			}
		}
	}
}

func TestOpenRejectsTampering(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	ia, rb := pair(t, a, b, t0, newDetRand("tamper"))
	good, err := ia.Seal(nil, payload(7))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		bit  int // bit index into the frame
		want error
	}{
		{"type", 0*8 + 1, ErrMalformed},
		{"reserved", 2 * 8, ErrMalformed},
		{"receiver index", 7 * 8, ErrMalformed},
		{"counter", 15 * 8, ErrAuth},
		{"counter high bit", 8 * 8, ErrAuth},
		{"first ciphertext byte", HeaderSize * 8, ErrAuth},
		{"middle", 700 * 8, ErrAuth},
		{"tag", (FrameSize - 1) * 8, ErrAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := bytes.Clone(good)
			f[tc.bit/8] ^= 1 << (tc.bit % 8)
			if _, err := rb.Open(nil, f); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := rb.Open(nil, good[:FrameSize-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short frame: %v", err)
	}
	// Failed attempts must not burn the counter.
	if _, err := rb.Open(nil, good); err != nil {
		t.Fatalf("genuine frame after tampered copies: %v", err)
	}
}

func TestSealOpenBuffers(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	ia, rb := pair(t, a, b, t0, newDetRand("buf"))
	if _, err := ia.Seal(nil, payload(1)[:PayloadSize-1]); err == nil {
		t.Fatal("short payload sealed")
	}
	// In place: payload lives where the ciphertext goes.
	buf := make([]byte, FrameSize)
	copy(buf[HeaderSize:], payload(3))
	f, err := ia.Seal(buf, buf[HeaderSize:HeaderSize+PayloadSize])
	if err != nil {
		t.Fatal(err)
	}
	if &f[0] != &buf[0] {
		t.Fatal("Seal did not reuse dst")
	}
	// Inexact overlap is an error, not a panic.
	if _, err := ia.Seal(buf, buf[1:1+PayloadSize]); err == nil {
		t.Fatal("overlapping payload accepted")
	}
	got, err := rb.Open(f[HeaderSize:HeaderSize], f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload(3)) || &got[0] != &f[HeaderSize] {
		t.Fatal("in-place open wrong")
	}
	f2, _ := ia.Seal(nil, payload(4))
	if _, err := rb.Open(f2[1:1], f2); err == nil {
		t.Fatal("overlapping dst accepted")
	}
}

func TestNoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	a, b := newPeer(t, 1), newPeer(t, 2)
	ia, rb := pair(t, a, b, t0, newDetRand("alloc"))
	p := payload(1)
	frame := make([]byte, FrameSize)
	out := make([]byte, PayloadSize)
	allocs := testing.AllocsPerRun(100, func() {
		f, err := ia.Seal(frame, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rb.Open(out, f); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Seal+Open allocate %.1f times per frame", allocs)
	}
}

func TestExpiryAndRekey(t *testing.T) {
	defer func(a, b, c time.Duration) { RekeyAfterTime, RejectAfterTime, ResponderRekeyAfterTime = a, b, c }(RekeyAfterTime, RejectAfterTime, ResponderRekeyAfterTime)
	RekeyAfterTime, ResponderRekeyAfterTime, RejectAfterTime = 2*time.Second, 3*time.Second, 4*time.Second
	a, b := newPeer(t, 1), newPeer(t, 2)
	ia, rb := pair(t, a, b, t0, newDetRand("expiry"))
	f, err := ia.Seal(nil, payload(1))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		at                     time.Duration
		iRekey, rRekey, expire bool
	}{
		{0, false, false, false},
		{2 * time.Second, true, false, false},
		{3 * time.Second, true, true, false},
		{4 * time.Second, true, true, true},
	}
	for _, c := range checks {
		now := t0.Add(c.at)
		if ia.NeedsRekey(now) != c.iRekey || rb.NeedsRekey(now) != c.rRekey || ia.Expired(now) != c.expire || rb.Expired(now) != c.expire {
			t.Fatalf("at +%v: rekey %v/%v expired %v, want %v/%v %v", c.at, ia.NeedsRekey(now), rb.NeedsRekey(now), ia.Expired(now), c.iRekey, c.rRekey, c.expire)
		}
	}
	late := func() time.Time { return t0.Add(4 * time.Second) }
	ia.SetClock(late)
	rb.SetClock(late)
	if _, err := ia.Seal(nil, payload(1)); !errors.Is(err, ErrExpired) {
		t.Fatalf("Seal after RejectAfterTime: %v", err)
	}
	if _, err := rb.Open(nil, f); !errors.Is(err, ErrExpired) {
		t.Fatalf("Open after RejectAfterTime: %v", err)
	}
}

func TestMessageLimits(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	ia, _ := pair(t, a, b, t0, newDetRand("limits"))
	ia.sendCounter.Store(RekeyAfterMessages)
	if !ia.NeedsRekey(t0) {
		t.Fatal("no rekey after RekeyAfterMessages")
	}
	ia.sendCounter.Store(RejectAfterMessages - 1)
	if _, err := ia.Seal(nil, payload(1)); err != nil {
		t.Fatalf("last allowed message: %v", err)
	}
	if _, err := ia.Seal(nil, payload(1)); !errors.Is(err, ErrExpired) {
		t.Fatalf("past RejectAfterMessages: %v", err)
	}
	if !ia.Expired(t0) {
		t.Fatal("not Expired after RejectAfterMessages")
	}
}

// TestConcurrentSealOpen runs with -race in CI: many sealers, many
// openers, every frame opened exactly once.
func TestConcurrentSealOpen(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	ia, rb := pair(t, a, b, t0, newDetRand("conc"))
	const sealers, perSealer, openers = 8, 300, 4
	frames := make(chan []byte, sealers*perSealer)
	var wg sync.WaitGroup
	for g := 0; g < sealers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			p := payload(byte(g))
			for i := 0; i < perSealer; i++ {
				f, err := ia.Seal(make([]byte, FrameSize), p)
				if err != nil {
					t.Error(err)
					return
				}
				frames <- f
			}
		}(g)
	}
	wg.Wait()
	close(frames)
	all := make([][]byte, 0, sealers*perSealer)
	for f := range frames {
		all = append(all, f)
	}
	var mu sync.Mutex
	opened := 0
	work := make(chan []byte)
	for o := 0; o < openers; o++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]byte, PayloadSize)
			for f := range work {
				if _, err := rb.Open(out, f); err != nil {
					t.Error(err)
					continue
				}
				// A second open of the same frame must be a replay.
				if _, err := rb.Open(out, f); !errors.Is(err, ErrReplay) {
					t.Errorf("second open: %v", err)
				}
				mu.Lock()
				opened++
				mu.Unlock()
			}
		}()
	}
	for _, f := range all {
		work <- f
	}
	close(work)
	wg.Wait()
	if opened != sealers*perSealer {
		t.Fatalf("opened %d of %d", opened, sealers*perSealer)
	}
}

// TestDefaultClockIsElapsedTime: without SetClock, a session created at a
// virtual time far from the wall clock still works (a simulator's nodes),
// and expiry follows real elapsed time.
func TestDefaultClockIsElapsedTime(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	ia, rb := pair(t, a, b, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), newDetRand("default-clock"))
	ia.now, rb.now = nil, nil
	f, err := ia.Seal(nil, payload(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Open(nil, f); err != nil {
		t.Fatal(err)
	}
	ia.born = time.Now().Add(-RejectAfterTime)
	if _, err := ia.Seal(nil, payload(1)); !errors.Is(err, ErrExpired) {
		t.Fatalf("Seal %v after creation: %v", RejectAfterTime, err)
	}
}
