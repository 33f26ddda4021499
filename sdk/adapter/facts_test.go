package adapter_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// The facts are a wire contract (docs/PROTOCOL.md §1, §10): a change here
// must be a deliberate protocol change, so the values are spelled out.
func TestFactsMatchTheProtocol(t *testing.T) {
	if adapter.InnerMTU != 1280 {
		t.Errorf("InnerMTU = %d", adapter.InnerMTU)
	}
	want := []string{"100.64.0.53", "fd7a:7a72:7a6e::53"}
	got := adapter.DefaultDNS()
	if len(got) != 2 || got[0].String() != want[0] || got[1].String() != want[1] {
		t.Errorf("DefaultDNS = %v, want %v", got, want)
	}
	got[0] = netip.IPv4Unspecified()
	if adapter.DefaultDNS()[0] != adapter.DNSv4 {
		t.Error("DefaultDNS returned a shared slice")
	}
	if adapter.ClientPrefix4.String() != "100.64.0.2/10" || adapter.ClientPrefix6.String() != "fd7a:7a72:7a6e::2/64" {
		t.Errorf("client prefixes %v %v", adapter.ClientPrefix4, adapter.ClientPrefix6)
	}
	if adapter.MSS(adapter.InnerMTU, 4) != 1240 || adapter.MSS(adapter.InnerMTU, 6) != 1220 {
		t.Errorf("MSS = %d, %d", adapter.MSS(adapter.InnerMTU, 4), adapter.MSS(adapter.InnerMTU, 6))
	}
}

func TestProtoNamesRoundTrip(t *testing.T) {
	for num, name := range map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"} {
		if got := adapter.ProtoName(num); got != name {
			t.Errorf("ProtoName(%d) = %q, want %q", num, got, name)
		}
		if got, ok := adapter.ProtoNumber(name); !ok || got != num {
			t.Errorf("ProtoNumber(%q) = %d, %v", name, got, ok)
		}
	}
	if adapter.ProtoName(47) != "" {
		t.Error("GRE has a name")
	}
	if _, ok := adapter.ProtoNumber("gre"); ok {
		t.Error(`ProtoNumber("gre") ok`)
	}
}

// syn4 is an IPv4 TCP SYN carrying an MSS option of mss, checksums filled.
func syn4(mss uint16) []byte {
	src, dst := netip.MustParseAddr("100.64.0.2"), netip.MustParseAddr("192.0.2.1")
	tcp := make([]byte, 24)
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 443)
	tcp[12], tcp[13] = 6<<4, 0x02
	tcp[20], tcp[21] = 2, 4
	binary.BigEndian.PutUint16(tcp[22:], mss)
	binary.BigEndian.PutUint16(tcp[16:], ippkt.Checksum(tcp, ippkt.PseudoSum(src, dst, ippkt.ProtoTCP, len(tcp))))
	ip := []byte{0x45, 0, 0, 44, 0, 1, 0x40, 0, 64, ippkt.ProtoTCP, 0, 0}
	ip = append(append(ip, src.AsSlice()...), dst.AsSlice()...)
	binary.BigEndian.PutUint16(ip[10:], ippkt.Checksum(ip, 0))
	return append(ip, tcp...)
}

func TestClampMSSUsesTheParsedInfo(t *testing.T) {
	for _, tc := range []struct {
		mss, want uint16
		changed   bool
	}{{1460, 1240, true}, {1240, 1240, false}, {536, 536, false}} {
		p := syn4(tc.mss)
		in, err := ippkt.Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := adapter.ClampMSS(p, in, adapter.InnerMTU); got != tc.changed {
			t.Errorf("MSS %d: changed = %v", tc.mss, got)
		}
		if got := binary.BigEndian.Uint16(p[20+22:]); got != tc.want {
			t.Errorf("MSS %d: now %d, want %d", tc.mss, got, tc.want)
		}
		if err := ippkt.Verify(p); err != nil {
			t.Errorf("MSS %d: checksum: %v", tc.mss, err)
		}
	}
}
