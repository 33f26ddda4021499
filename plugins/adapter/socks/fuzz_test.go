package socks

import (
	"bytes"
	"net/netip"
	"testing"
)

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 1, 198, 18, 0, 1, 0, 80})
	f.Add([]byte{5, 1, 0, 3, 3, 'a', '.', 'b', 0, 80})
	f.Add([]byte{5, 3, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 53})
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, dst, err := readRequest(bytes.NewReader(b))
		if err != nil {
			return
		}
		if dst.host == "" && !dst.addr.IsValid() {
			t.Fatalf("cmd %d: neither host nor address", cmd)
		}
		if dst.host != "" && dst.addr.IsValid() {
			t.Fatalf("both host and address")
		}
	})
}

func FuzzParseUDPHeader(f *testing.F) {
	f.Add(append(appendUDPHeader(nil, netipMust("198.18.0.1:7")), "data"...))
	f.Add([]byte{0, 0, 0, 3, 1, 'x', 0, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		dst, _, payload, err := parseUDPHeader(b)
		if err != nil {
			return
		}
		if len(payload) > len(b) {
			t.Fatal("payload longer than datagram")
		}
		if dst.host == "" {
			// An address header must round-trip.
			re := appendUDPHeader(nil, netipAP(dst))
			re = append(re, payload...)
			d2, _, p2, err := parseUDPHeader(re)
			if err != nil || d2 != dst || !bytes.Equal(p2, payload) {
				t.Fatalf("round trip: %v %v %v", d2, dst, err)
			}
		}
	})
}

func FuzzHandshake(f *testing.F) {
	f.Add([]byte{5, 2, 0, 2, 1, 5, 'a', 'l', 'i', 'c', 'e', 1, 'x'})
	f.Add([]byte{5, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		if _, err := readGreeting(r); err != nil {
			return
		}
		user, pass, err := readUserPass(r)
		if err == nil && (len(user) > 255 || len(pass) > 255) {
			t.Fatalf("credentials too long: %d %d", len(user), len(pass))
		}
	})
}

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func netipAP(d destination) netip.AddrPort { return netip.AddrPortFrom(d.addr, d.port) }
