package exitpolicy

import (
	"net/netip"
	"testing"
)

// The exit runs Allows on every packet it forwards.
func benchAllows(b *testing.B, dst string) {
	p := Default()
	d := netip.MustParseAddrPort(dst)
	for b.Loop() {
		p.Allows("tcp", d)
	}
}

func BenchmarkAllowsIPv4(b *testing.B) { benchAllows(b, "193.0.14.129:443") }
func BenchmarkAllowsIPv6(b *testing.B) { benchAllows(b, "[2606:4700:4700::1111]:443") }
func BenchmarkAllows6to4(b *testing.B) { benchAllows(b, "[2002:808:808::1]:443") }
