package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/tarzan-net/tarzan/core/identity"
)

func TestHandshakeBothDirections(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	ia, rb := pair(t, a, b, t0, newDetRand("hs"))
	if ia.LocalIndex() != rb.RemoteIndex() || rb.LocalIndex() != ia.RemoteIndex() {
		t.Fatalf("indices: a %d/%d b %d/%d", ia.LocalIndex(), ia.RemoteIndex(), rb.LocalIndex(), rb.RemoteIndex())
	}
	if ia.Remote() != b.id.ID() || rb.Remote() != a.id.ID() {
		t.Fatal("Remote() wrong")
	}
	if !ia.Created().Equal(t0) || !ia.Initiator() || rb.Initiator() {
		t.Fatal("Created/Initiator wrong")
	}
	for i, dir := range []struct {
		from, to *Session
	}{{ia, rb}, {rb, ia}, {ia, rb}} {
		p := payload(byte(i + 1))
		f, err := dir.from.Seal(nil, p)
		if err != nil {
			t.Fatal(err)
		}
		if typ, ri, err := Header(f); err != nil || typ != TypeData || ri != dir.to.LocalIndex() {
			t.Fatalf("header %d %d %v", typ, ri, err)
		}
		got, err := dir.to.Open(nil, f)
		if err != nil {
			t.Fatalf("direction %d: %v", i, err)
		}
		if !bytes.Equal(got, p) {
			t.Fatalf("direction %d: payload differs", i)
		}
		// A session cannot open its own frames (per-direction keys).
		if _, err := dir.from.Open(nil, f); err == nil {
			t.Fatal("own frame opened")
		}
	}
}

func TestRespondRejects(t *testing.T) {
	a, b, c := newPeer(t, 1), newPeer(t, 2), newPeer(t, 3)
	rand := newDetRand("rej")
	_, initFrame, err := Initiate(a.static, a.id.ID(), b.static.Public, 7, rand, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Initiator that claims to be a but uses c's link key.
	_, impostor, err := Initiate(c.static, a.id.ID(), b.static.Public, 7, rand, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Initiation aimed at the wrong responder key.
	_, misdirected, err := Initiate(a.static, a.id.ID(), c.static.Public, 7, rand, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, future, err := Initiate(a.static, a.id.ID(), b.static.Public, 7, rand, t0.Add(MaxClockSkew+time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	tsNow := Timestamp(t0)
	flipped := bytes.Clone(initFrame)
	flipped[HeaderSize+60] ^= 1
	badPad := bytes.Clone(initFrame)
	badPad[FrameSize-1] = 1
	badIndex := bytes.Clone(initFrame)
	badIndex[7] = 1
	tests := []struct {
		name  string
		frame []byte
		look  func(identity.ID) ([32]byte, [12]byte, Flags, error)
		want  error
	}{
		{"wrong expected static", initFrame, admit(peer{a.id, c.static}, [12]byte{}), ErrAuth},
		{"impostor link key", impostor, admit(a, [12]byte{}), ErrAuth},
		{"refused by lookup", initFrame, admit(c, [12]byte{}), errNotMimic},
		{"refused is ErrAuth", initFrame, admit(c, [12]byte{}), ErrAuth},
		{"wrong responder key", misdirected, admit(a, [12]byte{}), ErrAuth},
		{"replay (same timestamp)", initFrame, admit(a, tsNow), ErrReplay},
		{"replay (older timestamp)", initFrame, admit(a, Timestamp(t0.Add(time.Second))), ErrReplay},
		{"far future", future, admit(a, [12]byte{}), ErrStale},
		{"flipped bit", flipped, admit(a, [12]byte{}), ErrAuth},
		{"non-zero padding", badPad, admit(a, [12]byte{}), ErrMalformed},
		{"receiver index set", badIndex, admit(a, [12]byte{}), ErrMalformed},
		{"short", initFrame[:100], admit(a, [12]byte{}), ErrMalformed},
		{"data frame", append([]byte{TypeData}, initFrame[1:]...), admit(a, [12]byte{}), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, resp, _, _, err := Respond(b.static, tc.frame, 9, rand, t0, tc.look)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if s != nil || resp != nil {
				t.Fatal("session or response returned with an error")
			}
		})
	}
}

// TestReplayedInitiation walks the node's bookkeeping: the timestamp
// returned by Respond becomes lastTimestamp, and the same frame again is
// refused while a later initiation is accepted.
func TestReplayedInitiation(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	rand := newDetRand("replay")
	_, f1, _ := Initiate(a.static, a.id.ID(), b.static.Public, 1, rand, t0)
	var last [12]byte
	_, _, _, ts, err := Respond(b.static, f1, 2, rand, t0, admit(a, last))
	if err != nil {
		t.Fatal(err)
	}
	if ts != Timestamp(t0) {
		t.Fatal("returned timestamp is not the initiator's")
	}
	last = ts
	if _, _, _, _, err := Respond(b.static, f1, 3, rand, t0.Add(time.Second), admit(a, last)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed initiation: err = %v, want ErrReplay", err)
	}
	_, f2, _ := Initiate(a.static, a.id.ID(), b.static.Public, 4, rand, t0.Add(time.Second))
	if _, _, _, _, err := Respond(b.static, f2, 5, rand, t0.Add(time.Second), admit(a, last)); err != nil {
		t.Fatalf("newer initiation refused: %v", err)
	}
}

func TestFinishRejects(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	rand := newDetRand("finish")
	h, initFrame, err := Initiate(a.static, a.id.ID(), b.static.Public, 11, rand, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, resp, _, _, err := Respond(b.static, initFrame, 12, rand, t0, admit(a, [12]byte{}))
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Clone(resp)
	copy(forged[HeaderSize:HeaderSize+respMsgSize], bytes.Repeat([]byte{9}, respMsgSize))
	lowOrder := bytes.Clone(resp)
	clear(lowOrder[HeaderSize : HeaderSize+32]) // all-zero ephemeral: DH fails
	wrongIndex := bytes.Clone(resp)
	binary.BigEndian.PutUint32(wrongIndex[4:], 99)
	tests := []struct {
		name  string
		frame []byte
		now   time.Time
		want  error
	}{
		{"wrong receiver index", wrongIndex, t0, ErrMalformed},
		{"forged response", forged, t0, ErrAuth},
		{"low-order ephemeral", lowOrder, t0, ErrAuth},
		{"too late", resp, t0.Add(HandshakeTimeout + time.Second), ErrStale},
		{"init frame", initFrame, t0, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.Finish(tc.frame, tc.now); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// The failures above must not have spoiled the handshake.
	s, err := h.Finish(resp, t0.Add(time.Second))
	if err != nil {
		t.Fatalf("genuine response after forged ones: %v", err)
	}
	if s.RemoteIndex() != 12 || s.LocalIndex() != 11 {
		t.Fatal("indices wrong")
	}
	if _, err := h.Finish(resp, t0); !errors.Is(err, ErrStale) {
		t.Fatalf("second Finish: err = %v, want ErrStale", err)
	}
}

func TestIndexZeroRefused(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	if _, _, err := Initiate(a.static, a.id.ID(), b.static.Public, 0, newDetRand("z"), t0); err == nil {
		t.Fatal("Initiate accepted index 0")
	}
	_, f, _ := Initiate(a.static, a.id.ID(), b.static.Public, 1, newDetRand("z"), t0)
	if _, _, _, _, err := Respond(b.static, f, 0, newDetRand("z"), t0, admit(a, [12]byte{})); err == nil {
		t.Fatal("Respond accepted index 0")
	}
}

func TestTimestampOrder(t *testing.T) {
	prev := Timestamp(t0)
	for _, d := range []time.Duration{20 * time.Millisecond, time.Second, time.Hour, 365 * 24 * time.Hour} {
		ts := Timestamp(t0.Add(d))
		if bytes.Compare(ts[:], prev[:]) <= 0 {
			t.Fatalf("timestamp at +%v not greater", d)
		}
		prev = ts
	}
	if got := timestampTime(Timestamp(t0)); !got.Equal(t0) {
		t.Fatalf("round trip %v", got)
	}
}

func TestStaticNoPrivateInString(t *testing.T) {
	s, err := NewStatic(newDetRand("s"))
	if err != nil {
		t.Fatal(err)
	}
	priv := fmt.Sprintf("%x", s.Private)
	for _, str := range []string{s.String(), s.GoString(), fmt.Sprintf("%v %+v %#v", s, s, s)} {
		if strings.Contains(str, priv[:8]) {
			t.Fatal(str)
		}
	}
	again, _ := StaticFromPrivate(s.Private)
	if again != s {
		t.Fatal("StaticFromPrivate differs from NewStatic")
	}
}

// The flags byte of each handshake message reaches the other side, and a
// message with a flag this version does not define is refused: one valid
// encoding per message, and a later version changes the prologue.
func TestHandshakeFlags(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	for _, tc := range []struct{ init, resp Flags }{{0, 0}, {FlagFresh, 0}, {0, FlagFresh}, {FlagFresh, FlagFresh}} {
		rand := newDetRand(fmt.Sprintf("flags-%d-%d", tc.init, tc.resp))
		h, initFrame, err := InitiateFlags(a.static, a.id.ID(), b.static.Public, 1, tc.init, rand, t0)
		if err != nil {
			t.Fatal(err)
		}
		rb, resp, _, _, err := Respond(b.static, initFrame, 2, rand, t0, admitFlags(a, [12]byte{}, tc.resp))
		if err != nil {
			t.Fatal(err)
		}
		ia, err := h.Finish(resp, t0)
		if err != nil {
			t.Fatal(err)
		}
		if rb.PeerFlags() != tc.init || ia.PeerFlags() != tc.resp {
			t.Errorf("sent %#x/%#x, received %#x/%#x", tc.init, tc.resp, rb.PeerFlags(), ia.PeerFlags())
		}
	}
	rand := newDetRand("flags-bad")
	if _, _, err := InitiateFlags(a.static, a.id.ID(), b.static.Public, 1, 0x02, rand, t0); err == nil {
		t.Error("InitiateFlags accepted an undefined flag")
	}
	// An initiation whose sealed flags byte has an undefined bit.
	h, _, err := InitiateFlags(a.static, a.id.ID(), b.static.Public, 1, FlagFresh, rand, t0)
	if err != nil {
		t.Fatal(err)
	}
	h.payload[initPayloadSize-1] = 0x81
	bad := newFrame(TypeHandshakeInit, 0)
	if _, err := h.start(bad[HeaderSize:HeaderSize]); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := Respond(b.static, bad, 2, rand, t0, admit(a, [12]byte{})); !errors.Is(err, ErrMalformed) {
		t.Errorf("initiation with flags 0x81: err = %v, want ErrMalformed", err)
	}
	// A responder asked to send an undefined flag refuses.
	_, good, _ := InitiateFlags(a.static, a.id.ID(), b.static.Public, 1, 0, rand, t0.Add(time.Second))
	if _, _, _, _, err := Respond(b.static, good, 2, rand, t0, admitFlags(a, [12]byte{}, 0x40)); err == nil {
		t.Error("Respond sent an undefined flag")
	}
	// A response whose sealed flags byte has an undefined bit.
	h, initFrame, _ := InitiateFlags(a.static, a.id.ID(), b.static.Public, 3, 0, rand, t0)
	hs, err := noise.NewHandshakeState(noiseConfig(b.static, false, rand))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := hs.ReadMessage(nil, initFrame[HeaderSize:HeaderSize+initMsgSize]); err != nil {
		t.Fatal(err)
	}
	resp := newFrame(TypeHandshakeResp, 3)
	if _, _, _, err := hs.WriteMessage(resp[HeaderSize:HeaderSize], []byte{0, 0, 0, 4, 0x10}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Finish(resp, t0); !errors.Is(err, ErrMalformed) {
		t.Errorf("response with flags 0x10: err = %v, want ErrMalformed", err)
	}
}
