package gossip

import (
	"bytes"
	"testing"
	"time"
)

// A malicious node that breaks the signature of every descriptor it sends
// gets none of them proposed anywhere; the honest nodes still converge.
func TestForgedDescriptorsNeverProposed(t *testing.T) {
	s := newSim(t, 30, simOptions(), 7)
	evil := s.nodes[0]
	var forged [][]byte
	s.tamper = func(from *simNode, data []byte) []byte {
		if from != evil {
			return data
		}
		m, err := decode(data)
		if err != nil || m.typ != typeDescs {
			return data
		}
		for i, d := range m.descs {
			d = bytes.Clone(d)
			d[len(d)/2] ^= 0x01 // inside the signed body: an address, key or time
			m.descs[i] = d
			forged = append(forged, d)
		}
		out, err := m.encode()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// No honest node bootstraps from the malicious one: a joining node
	// whose only bootstrap lies learns nothing else (an eclipse no
	// protocol can prevent; list several bootstrap addresses).
	s.start(0, 1)
	s.start(1, 2)
	for i := 2; i < len(s.nodes); i++ {
		s.start(i, 1+s.rng.IntN(i-1))
	}
	s.run(16)
	if len(forged) == 0 {
		t.Fatal("the malicious node sent no descriptors; the test tests nothing")
	}
	for _, p := range s.proposed {
		for _, f := range forged {
			if bytes.Equal(p, f) {
				t.Fatal("a forged descriptor was proposed to a core")
			}
		}
	}
	dropped := uint64(0)
	for _, sn := range s.nodes {
		dropped += sn.g.Stats()["drop_invalid_descriptor"]
	}
	if dropped == 0 {
		t.Error("no node counted a dropped invalid descriptor")
	}
	t.Logf("%d forged descriptors sent, %d dropped as invalid", len(forged), dropped)
}

// A node that stops is forgotten once its descriptor has expired (plus
// the expiry option), while the others, re-signing at half-life, stay
// known through refresh probes; when it restarts it is learned again.
func TestExpiryRefreshAndRestart(t *testing.T) {
	o := simOptions()
	o.interval = 10 * time.Second
	o.expiry = 30 * time.Second
	s := newSim(t, 20, o, 3)
	s.lifetime = 10 * time.Minute
	s.startAll()
	s.run(12)

	gone := s.nodes[5]
	gone.alive = false
	goneExpires := gone.cur.Expires
	// Past the gone node's expiry, and through two re-signings of the
	// others.
	for s.now.Before(goneExpires.Add(o.expiry + 2*o.interval)) {
		s.step()
	}
	if !s.viewsAreLiveNodes() {
		t.Fatalf("after expiry: views are not exactly the live nodes: %s", s.describe())
	}
	var refreshed, selfRefreshed, expired uint64
	for _, sn := range s.nodes {
		st := sn.g.Stats()
		refreshed += st["refresh_probes"]
		selfRefreshed += st["self_refreshed"]
		expired += st["expired"]
	}
	if refreshed == 0 || selfRefreshed == 0 || expired == 0 {
		t.Fatalf("refresh_probes %d, self_refreshed %d, expired %d: want all > 0", refreshed, selfRefreshed, expired)
	}

	// The node comes back with a new descriptor, from one bootstrap.
	s.start(gone.idx, 0)
	for r := 1; ; r++ {
		s.step()
		if s.viewsAreLiveNodes() {
			t.Logf("restarted node known to all again after %d rounds", r)
			break
		}
		if r == 12 {
			t.Fatalf("restarted node not known to all after %d rounds: %s", r, s.describe())
		}
	}
}

// Options are checked.
func TestOptions(t *testing.T) {
	good := map[string]string{"bootstrap": "127.0.0.1:7000, [::1]:7001,", "interval": "250ms", "fanout": "5", "max_bytes": "4096", "expiry": "1m"}
	o, err := parseOptions(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.bootstrap) != 2 || o.interval != 250*time.Millisecond || o.fanout != 5 || o.maxBytes != 4096 || o.expiry != time.Minute {
		t.Fatalf("parsed %+v", o)
	}
	for _, bad := range []map[string]string{
		{"bootstrap": "example.com:7000"},
		{"bootstrap": "127.0.0.1:0"},
		{"interval": "0s"},
		{"fanout": "0"},
		{"max_bytes": "100"},
		{"expiry": "-1s"},
		{"peers": "127.0.0.1:1"},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%v) accepted", bad)
		}
	}
}

// viewsAreLiveNodes reports whether every live node gossips a descriptor
// (of any version) of every other live node and of no dead one. Versions
// lag while a re-signed descriptor spreads, so this is the check for
// tests where nodes re-sign.
func (s *sim) viewsAreLiveNodes() bool {
	for _, sn := range s.nodes {
		if !sn.alive {
			continue
		}
		sn.g.mu.Lock()
		n := 0
		ok := true
		for id := range sn.g.view {
			if s.byID[id].alive {
				n++
			} else {
				ok = false
			}
		}
		sn.g.mu.Unlock()
		live := 0
		for _, o := range s.nodes {
			if o.alive {
				live++
			}
		}
		if !ok || n != live-1 {
			return false
		}
	}
	return true
}
