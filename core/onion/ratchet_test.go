package onion

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

func TestWireCounter(t *testing.T) {
	for _, base := range []uint32{0, 1, 12345, counterMod - 1} {
		for _, c := range []uint32{1, 2, ratchetEvery, counterMod - 1, counterMod} {
			w := wireCounter(c, base)
			if w == 0 {
				t.Fatalf("base %d counter %d: wire 0, the delivery marker's prefix", base, c)
			}
			if got, ok := logicalCounter(w, base); !ok || got != c {
				t.Fatalf("base %d counter %d: wire %d decodes to %d %v", base, c, w, got, ok)
			}
		}
	}
	if _, ok := logicalCounter(0, 7); ok {
		t.Fatal("wire 0 decoded")
	}
	if wireCounter(1, counterMod-1) != counterMod || wireCounter(2, counterMod-1) != 1 {
		t.Fatal("the encoding does not wrap over 1 .. 2^32−1")
	}
}

// Cells arrive out of order across generation boundaries in both
// directions, and a gap of maxAhead generations is survived.
func TestRatchetAcrossGenerations(t *testing.T) {
	c := newCircuit(t, 2)
	var fwd, bwd [][]byte
	const n = 3*ratchetEvery + 100
	for i := range n {
		cell := make([]byte, CellSize)
		if err := c.path.Seal(cell, 0, []byte{byte(i)}, zeroReader{}); err != nil {
			t.Fatal(err)
		}
		fwd = append(fwd, cell)
		cell = make([]byte, CellSize)
		if err := c.relays[1].Originate(cell, []byte{byte(i)}, zeroReader{}); err != nil {
			t.Fatal(err)
		}
		c.relays[0].Backward(cell)
		bwd = append(bwd, cell)
	}
	// In order, except that the last 8 cells of each generation are held
	// back until 40 cells into the next: they need the previous keys.
	var order, held []int
	for i := range n {
		if i%ratchetEvery >= ratchetEvery-8 {
			held = append(held, i)
			continue
		}
		order = append(order, i)
		if i%ratchetEvery == 40 {
			order = append(order, held...)
			held = nil
		}
	}
	order = append(order, held...)
	for _, i := range order {
		local, got, err := c.relays[0].Forward(fwd[i])
		if err != nil || !local || got[0] != byte(i) {
			t.Fatalf("forward cell %d: local=%v err=%v", i, local, err)
		}
		hop, got, err := c.path.Open(bwd[i])
		if err != nil || hop != 1 || got[0] != byte(i) {
			t.Fatalf("backward cell %d: hop %d err %v", i, hop, err)
		}
	}
	if c.relays[0].fwd.gen != 3 || c.path.hops[1].bwd.gen != 3 {
		t.Fatalf("generations %d %d, want 3", c.relays[0].fwd.gen, c.path.hops[1].bwd.gen)
	}

	// A gap: skip to maxAhead generations ahead.
	g := c.relays[0].fwd.gen
	c.path.skipForward(0, (g+maxAhead)*ratchetEvery+1)
	cell := make([]byte, CellSize)
	c.path.Seal(cell, 0, []byte("after the gap"), nil)
	if _, _, err := c.relays[0].Forward(cell); err != nil {
		t.Fatalf("cell %d generations ahead: %v", maxAhead, err)
	}
	// One generation further than that is refused, and moves nothing.
	g = c.relays[0].fwd.gen
	c.path.skipForward(0, (g+maxAhead+1)*ratchetEvery+1)
	c.path.Seal(cell, 0, nil, nil)
	if _, _, err := c.relays[0].Forward(cell); !errors.Is(err, ErrTagMismatch) {
		t.Fatalf("cell %d generations ahead: %v, want ErrTagMismatch", maxAhead+1, err)
	}
	if c.relays[0].fwd.gen != g {
		t.Fatal("a refused cell moved the relay's generation")
	}
}

// A forged cell with a counter generations ahead must not advance the
// relay's window or keys (it would wipe the keys genuine cells need).
func TestForgedCounterAheadMovesNothing(t *testing.T) {
	c := newCircuit(t, 1)
	r := c.relays[0]
	genuine := make([]byte, CellSize)
	c.path.Seal(genuine, 0, []byte("genuine"), nil)
	for g := uint32(1); g <= maxAhead+2; g++ {
		forged := bytes.Clone(genuine)
		putSlot(forged, wireCounter(g*ratchetEvery+1, c.keys[0].fwdBase), &[tagSize]byte{1})
		if _, _, err := r.Forward(forged); !errors.Is(err, ErrTagMismatch) {
			t.Fatalf("forged counter in generation %d: %v", g, err)
		}
		if r.fwd.gen != 0 || r.win.top != 0 || r.fwd.cur == nil {
			t.Fatalf("forged counter in generation %d moved the relay to generation %d, top %d", g, r.fwd.gen, r.win.top)
		}
	}
	if local, _, err := r.Forward(genuine); err != nil || !local {
		t.Fatalf("genuine cell after forgeries: %v", err)
	}
}

// After two ratchet steps the old generation's raw key and the expanded
// copies of it (GCM's, and the initiator's AES block) are zero in memory,
// at the relay and at the initiator.
func TestRatchetWipesOldGenerations(t *testing.T) {
	c := newCircuit(t, 1)
	r, h := c.relays[0], c.path.hops[0]
	relayOld, pathOld := r.fwd.cur, h.fwd.cur
	expanded := map[string]any{"relay's GCM": relayOld.ctr, "initiator's GCM": pathOld.ctr, "initiator's AES block": pathOld.block}
	cell := make([]byte, CellSize)
	for range 2*ratchetEvery + 1 {
		c.path.Seal(cell, 0, nil, zeroReader{})
		if _, _, err := r.Forward(cell); err != nil {
			t.Fatal(err)
		}
	}
	if r.fwd.gen != 2 || r.fwd.prev == relayOld || r.fwd.cur == relayOld {
		t.Fatalf("relay at generation %d still holds generation 0", r.fwd.gen)
	}
	if h.fwd.prev != nil {
		t.Error("the initiator, a sender, kept a previous forward generation")
	}
	if !allZero(relayOld.key[:]) || !allZero(pathOld.key[:]) {
		t.Error("generation 0's raw key was not wiped")
	}
	if !hardwareAESPlatform() {
		t.Skipf("no claim about expanded keys on %s", runtime.GOARCH)
	}
	for name, x := range expanded {
		if b := objectBytes(x); b == nil || !allZero(b) {
			t.Errorf("generation 0's %s (%T) was not wiped", name, x)
		}
	}
}

// wipeObject must work on the cipher types this platform uses; if a Go
// release adds pointers to them, this says so instead of silently keeping
// old keys around.
func TestWipeObject(t *testing.T) {
	if !hardwareAESPlatform() {
		t.Skipf("no claim about expanded keys on %s", runtime.GOARCH)
	}
	var k [32]byte
	k[0] = 1
	g := newGenKeys(&k, true)
	block, ctr := g.block, g.ctr
	if !g.wipe() {
		t.Fatalf("could not wipe %T and %T", block, ctr)
	}
	type withPointer struct{ p *int }
	if wipeObject(&withPointer{}) || wipeObject(nil) || wipeObject(struct{}{}) {
		t.Fatal("wipeObject touched something it must not")
	}
}

func hardwareAESPlatform() bool { return runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" }

// objectBytes is the memory of the struct x points to.
func objectBytes(x any) []byte {
	v := reflect.ValueOf(x)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	return unsafe.Slice((*byte)(v.UnsafePointer()), v.Type().Elem().Size())
}

// HardwareAES must say no when the AES instructions are switched off
// (GODEBUG=cpu.aes=off, which crypto/aes obeys too), else a node could run
// table-based AES unawares.
func TestHardwareAESFollowsGODEBUG(t *testing.T) {
	if os.Getenv("ONION_AES_CHILD") != "" {
		fmt.Println("HardwareAES", HardwareAES())
		return
	}
	t.Logf("HardwareAES() = %v on %s", HardwareAES(), runtime.GOARCH)
	if !HardwareAES() {
		t.Skip("no AES instructions here to switch off")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHardwareAESFollowsGODEBUG$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ONION_AES_CHILD=1", "GODEBUG=cpu.aes=off")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "HardwareAES false") {
		t.Fatalf("with cpu.aes=off: err %v, output:\n%s", err, out)
	}
}
