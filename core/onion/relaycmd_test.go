package onion

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRelayPayloadRoundTrip(t *testing.T) {
	buf := make([]byte, CellSize)
	for i := range buf {
		buf[i] = 0xAA // stale contents must not survive encoding
	}
	for _, tc := range []struct {
		cmd  Command
		data []byte
	}{
		{CmdData, nil},
		{CmdData, []byte("packet")},
		{CmdDrop, bytes.Repeat([]byte{7}, MaxData)},
		{Command(200), []byte("future")},
	} {
		p, err := EncodeRelay(buf, tc.cmd, tc.data)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != PayloadSize {
			t.Fatalf("payload %d bytes", len(p))
		}
		if !allZero(p[4+len(tc.data):]) {
			t.Fatal("padding not zeroed")
		}
		cmd, data, err := DecodeRelay(p)
		if err != nil || cmd != tc.cmd || !bytes.Equal(data, tc.data) {
			t.Fatalf("%v: got %v %q %v", tc.cmd, cmd, data, err)
		}
	}
}

func TestRelayPayloadBounds(t *testing.T) {
	buf := make([]byte, PayloadSize)
	if _, err := EncodeRelay(buf, CmdData, make([]byte, MaxData+1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("data too long: %v", err)
	}
	if _, err := EncodeRelay(buf[:PayloadSize-1], CmdData, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("short dst: %v", err)
	}
	// Data aliasing its own destination.
	copy(buf[4:], "abc")
	p, err := EncodeRelay(buf, CmdData, buf[4:7])
	if err != nil || string(p[4:7]) != "abc" {
		t.Errorf("aliasing: %q %v", p[4:7], err)
	}
	for _, bad := range [][]byte{
		nil,
		{1, 0, 0},
		{1, 0, 0x05, 0x05}, // length beyond the payload
		append([]byte{1, 0, 0x05, 0x05}, make([]byte, 2000)...), // beyond MaxData
	} {
		if _, _, err := DecodeRelay(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("decode % x…: %v", bad[:min(len(bad), 4)], err)
		}
	}
	if _, _, err := DecodeRelay([]byte{1, 0xff, 0, 0}); err != nil {
		t.Errorf("flags must be ignored: %v", err)
	}
}

func TestCommandNames(t *testing.T) {
	if CmdData.String() != "DATA" || CmdDrop.String() != "DROP" || Command(0).String() != "CMD(0)" {
		t.Fatal(CmdData, CmdDrop, Command(0))
	}
	if Command(0).Known() || !CmdEnd.Known() || Command(CmdDrop+1).Known() {
		t.Fatal("Known")
	}
}

func TestRelayBodies(t *testing.T) {
	var next [32]byte
	next[0], next[31] = 1, 2
	msg := bytes.Repeat([]byte{9}, ClientMsgLen)
	b := EncodeExtend(next, msg)
	if len(b) != ExtendLen {
		t.Fatalf("extend body %d", len(b))
	}
	n2, m2, err := DecodeExtend(b)
	if err != nil || n2 != next || !bytes.Equal(m2, msg) {
		t.Fatal("extend round trip", err)
	}
	if _, _, err := DecodeExtend(b[1:]); !errors.Is(err, ErrMalformed) {
		t.Fatal("short extend", err)
	}
	if _, err := DecodeExtended(make([]byte, ServerMsgLen)); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeExtended(make([]byte, 3)); !errors.Is(err, ErrMalformed) {
		t.Fatal("short extended", err)
	}
	r, text, err := DecodeExtendFailed(EncodeExtendFailed(ReasonNotMimic, "no"))
	if err != nil || r != ReasonNotMimic || text != "no" {
		t.Fatal("extend failed round trip", r, text, err)
	}
	long := EncodeExtendFailed(ReasonOther, strings.Repeat("x", 5000))
	if len(long) > MaxData {
		t.Fatalf("EXTEND_FAILED body %d bytes does not fit", len(long))
	}
	if _, _, err := DecodeExtendFailed(nil); !errors.Is(err, ErrMalformed) {
		t.Fatal("empty extend failed", err)
	}
	id, nonce, err := DecodePing(EncodePing(42, 1<<63|7))
	if err != nil || id != 42 || nonce != 1<<63|7 {
		t.Fatal("ping round trip", id, nonce, err)
	}
	if _, _, err := DecodePing(make([]byte, 15)); !errors.Is(err, ErrMalformed) {
		t.Fatal("short ping", err)
	}
}
