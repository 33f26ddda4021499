package domain

import (
	"net/netip"
	"testing"
)

func TestOf(t *testing.T) {
	tests := []struct {
		addr string
		want [3]string
	}{
		{"10.1.2.3", [3]string{"10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32"}},
		{"::ffff:10.1.2.3", [3]string{"10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32"}},
		{"2001:db8:1:2::5", [3]string{"2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::5/128"}},
		{"fe80::1%eth0", [3]string{"fe80::/32", "fe80::/48", "fe80::1/128"}},
	}
	for _, tt := range tests {
		got := Of(netip.MustParseAddr(tt.addr))
		for i, w := range tt.want {
			if got[i] != netip.MustParsePrefix(w) {
				t.Errorf("Of(%s)[%d] = %s, want %s", tt.addr, i, got[i], w)
			}
		}
		if Top(netip.MustParseAddr(tt.addr)) != got[TopLevel] {
			t.Errorf("Top(%s) = %s, want %s", tt.addr, Top(netip.MustParseAddr(tt.addr)), got[TopLevel])
		}
	}
}

func TestInvalid(t *testing.T) {
	var zero netip.Addr
	if l := Of(zero); l != (Levels{}) {
		t.Errorf("Of(invalid) = %v, want zero", l)
	}
	if Top(zero).IsValid() {
		t.Errorf("Top(invalid) is valid")
	}
	if SameTop(zero, zero) {
		t.Errorf("SameTop(invalid, invalid) = true")
	}
}

func TestSameTop(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"10.1.2.3", "10.1.200.7", true},
		{"10.1.2.3", "10.2.2.3", false},
		{"10.1.2.3", "::ffff:10.1.9.9", true},
		{"2001:db8:1::1", "2001:db8:ffff::1", true},
		{"2001:db8::1", "2001:db9::1", false},
		{"10.1.2.3", "2001:db8::1", false},
		{"0.0.0.1", "::1", false}, // same low bytes, different families
	}
	for _, tt := range tests {
		if got := SameTop(netip.MustParseAddr(tt.a), netip.MustParseAddr(tt.b)); got != tt.want {
			t.Errorf("SameTop(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
