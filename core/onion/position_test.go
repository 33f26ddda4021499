package onion

import (
	"bytes"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"testing"
)

// Attack: a relay (or several colluding ones) reads the slot of every cell
// it handles and tries to tell its position on the path, or to link the
// cells it sees to those another hop saw. Tunnels are built as core/node
// builds them (an EXTEND to hop 1, then one through it to hop 2, each
// answered), then carry data to hop 3 and pings to random hops.
//
// Pass: what hops at different positions read has one distribution (KS
// test against uniform and between positions, each p > 0.01), and no two
// hops ever read the same counter or slot for the same cell.
func TestPositionUnlinkable(t *testing.T) {
	tunnels := 2000
	if testing.Short() {
		tunnels = 400
	}
	const hops = 3
	rnd := newDetRand("position")
	mix := mrand.New(mrand.NewPCG(1, 2))
	nodes := make([]*testNode, hops)
	for i := range nodes {
		nodes[i] = newTestNode(t, fmt.Sprint("position/node", i))
	}

	var (
		firstFwd [hops][]uint32 // counter field of the first forward cell each hop receives
		firstTag [hops][]uint32 // first 4 tag bytes of that cell
		firstBwd [hops][]uint32 // counter field of the first backward cell each relay receives from its successor
		cells    int
		linked   int // cells two hops read the same counter or slot for
	)
	// The slot is counter(4) || tag(12) in both protocol versions.
	const ctrField = 4
	counter := func(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

	for range tunnels {
		p := NewPath()
		relays := make([]*Relay, 0, hops)
		var seenFwd, seenBwd, tagFwd [hops][]uint32
		// forward sends a cell to hop `to` and records what each hop reads.
		forward := func(to int) {
			cell := make([]byte, CellSize)
			if err := p.Seal(cell, to, []byte("payload"), rnd); err != nil {
				t.Fatal(err)
			}
			var slots [][]byte
			for k := 0; k <= to; k++ {
				seenFwd[k] = append(seenFwd[k], counter(cell))
				tagFwd[k] = append(tagFwd[k], counter(cell[ctrField:]))
				slots = append(slots, bytes.Clone(cell[:SlotSize]))
				local, _, err := relays[k].Forward(cell)
				if err != nil || local != (k == to) {
					t.Fatalf("hop %d: local=%v err=%v", k, local, err)
				}
			}
			linked += sameSlots(slots)
			cells++
		}
		// backward has hop `from` answer; each hop before it reads the cell
		// its successor sent.
		backward := func(from int) {
			cell := make([]byte, CellSize)
			if err := relays[from].Originate(cell, []byte("answer"), rnd); err != nil {
				t.Fatal(err)
			}
			var slots [][]byte
			for k := from - 1; k >= 0; k-- {
				seenBwd[k] = append(seenBwd[k], counter(cell))
				slots = append(slots, bytes.Clone(cell[:SlotSize]))
				if err := relays[k].Backward(cell); err != nil {
					t.Fatal(err)
				}
			}
			slots = append(slots, bytes.Clone(cell[:SlotSize])) // what the initiator reads
			linked += sameSlots(slots)
			if hop, _, err := p.Open(cell); err != nil || hop != from {
				t.Fatalf("open: hop %d err %v", hop, err)
			}
			cells++
		}
		addHop := func(i int) {
			client, msg, err := NewClientHandshake(rnd, nodes[i].id, nodes[i].pub)
			if err != nil {
				t.Fatal(err)
			}
			reply, sk, err := ServerHandshake(rnd, nodes[i].id, nodes[i].keys, msg)
			if err != nil {
				t.Fatal(err)
			}
			ck, err := client.Finish(reply)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.AddHop(ck); err != nil {
				t.Fatal(err)
			}
			relays = append(relays, NewRelay(sk))
		}

		addHop(0) // CREATE: no cell
		for i := 1; i < hops; i++ {
			forward(i - 1) // EXTEND to the current last hop
			backward(i - 1)
			addHop(i)
		}
		for range 5 + mix.IntN(25) {
			if mix.IntN(3) > 0 {
				forward(hops - 1) // data to the exit
				if mix.IntN(2) == 0 {
					backward(hops - 1)
				}
			} else {
				h := mix.IntN(hops) // ping a random hop
				forward(h)
				backward(h)
			}
		}
		for k := range hops {
			firstFwd[k] = append(firstFwd[k], seenFwd[k][0])
			firstTag[k] = append(firstTag[k], tagFwd[k][0])
			if len(seenBwd[k]) > 0 {
				firstBwd[k] = append(firstBwd[k], seenBwd[k][0])
			}
		}
	}
	t.Logf("%d tunnels, %d cells; %d cells read with the same counter at two hops", tunnels, cells, linked)
	if linked > 0 {
		t.Errorf("%d of %d cells carry a counter that two hops both read: colluding hops link them", linked, cells)
	}

	const alpha = 0.01
	fail := false
	check := func(what string, d, p float64) {
		t.Logf("%-52s D=%.4f p=%.3g", what, d, p)
		if p <= alpha {
			fail = true
		}
	}
	for k := range hops {
		d, p := ksUniform32(firstFwd[k])
		check(fmt.Sprintf("forward, first cell, hop %d vs uniform", k+1), d, p)
		d, p = ksUniform32(firstTag[k])
		check(fmt.Sprintf("forward, first cell's tag, hop %d vs uniform", k+1), d, p)
	}
	for a := range hops {
		for b := a + 1; b < hops; b++ {
			d, p := ksTwoSample(firstFwd[a], firstFwd[b])
			check(fmt.Sprintf("forward, first cell, hop %d vs hop %d", a+1, b+1), d, p)
		}
	}
	for k := range hops - 1 {
		d, p := ksUniform32(firstBwd[k])
		check(fmt.Sprintf("backward, first cell read by hop %d vs uniform", k+1), d, p)
	}
	d, p := ksTwoSample(firstBwd[0], firstBwd[1])
	check("backward, first cell, hop 1 vs hop 2", d, p)
	if fail {
		t.Errorf("a position's counters are distinguishable (some p <= %v)", alpha)
	}
	t.Logf("first forward counter that hop 1/2/3 read, tunnel 0: %d %d %d",
		firstFwd[0][0], firstFwd[1][0], firstFwd[2][0])
}

// sameSlots is 1 if two readers of one cell read the same counter or slot.
func sameSlots(slots [][]byte) int {
	for i := range slots {
		for j := range i {
			if bytes.Equal(slots[i][:4], slots[j][:4]) || bytes.Equal(slots[i], slots[j]) {
				return 1
			}
		}
	}
	return 0
}

// The KS helpers must tell uniform from not uniform, else the test above
// could not fail.
func TestKSHelpers(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	uni := make([]uint32, 2000)
	for i := range uni {
		uni[i] = r.Uint32()
	}
	uni2 := make([]uint32, 1500)
	for i := range uni2 {
		uni2[i] = r.Uint32()
	}
	skew := make([]uint32, 2000)
	for i := range skew {
		skew[i] = r.Uint32() / 8 * 7 // uniform on [0, 7/8·2^32)
	}
	if _, p := ksUniform32(uni); p < 0.01 {
		t.Errorf("uniform sample: p = %v", p)
	}
	if _, p := ksUniform32(skew); p > 1e-6 {
		t.Errorf("skewed sample: p = %v", p)
	}
	if _, p := ksTwoSample(uni, uni2); p < 0.01 {
		t.Errorf("two uniform samples: p = %v", p)
	}
	if _, p := ksTwoSample(uni, skew); p > 1e-6 {
		t.Errorf("uniform vs skewed: p = %v", p)
	}
	small := []uint32{1, 2, 3, 1, 2, 3}
	if _, p := ksUniform32(small); p > 0.01 {
		t.Errorf("tiny counters: p = %v", p)
	}
}
