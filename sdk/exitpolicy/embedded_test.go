package exitpolicy

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// hostileDsts are destinations a client asks an exit to reach in order to
// get at the exit's own host or network: IPv6 forms that carry a private
// or reserved IPv4 address, and reserved IPv4 and IPv6 ranges. via names
// the IPv4 address the exit's kernel, or a NAT64/6to4/Teredo/ISATAP
// relay on its path, would deliver the packet to ("" when the destination
// is itself the reserved address).
var hostileDsts = []struct {
	dst, via string
}{
	// The four the exit was seen dialling.
	{"64:ff9b::7f00:1", "127.0.0.1"},
	{"2002:7f00:1::1", "127.0.0.1"},
	{"::127.0.0.1", "127.0.0.1"},
	{"240.0.0.1", ""},

	// IPv4-mapped ::ffff:0:0/96 (already judged as IPv4).
	{"::ffff:127.0.0.1", "127.0.0.1"},
	{"::ffff:169.254.169.254", "169.254.169.254"},
	// IPv4-compatible ::/96 (deprecated; Linux's sit0 still carries it).
	{"::10.1.2.3", "10.1.2.3"},
	{"::192.168.1.1", "192.168.1.1"},
	// IPv4-translated ::ffff:0:0:0/96 (RFC 2765 SIIT).
	{"::ffff:0:7f00:1", "127.0.0.1"},
	{"::ffff:0:a9fe:a9fe", "169.254.169.254"},
	// NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
	{"64:ff9b::a00:1", "10.0.0.1"},
	{"64:ff9b::a9fe:a9fe", "169.254.169.254"},
	{"64:ff9b::f000:1", "240.0.0.1"},
	{"64:ff9b::c000:201", "192.0.2.1"},
	// NAT64 local-use 64:ff9b:1::/48 (RFC 8215), /48 layout: IPv4 in
	// bits 48-63 and 72-87, bits 64-71 zero.
	{"64:ff9b:1:7f00:0:100::", "127.0.0.1"},
	{"64:ff9b:1:a9fe:a9:fe00::", "169.254.169.254"},
	// ... and the same prefix used with the /96 layout (the other layouts
	// of this address give 8.8.8.8 and 8.8.8.10).
	{"64:ff9b:1:808:8:808:a00:1", "10.0.0.1"},
	// 6to4 2002::/16: IPv4 in bits 16-47.
	{"2002:a9fe:a9fe::1", "169.254.169.254"},
	{"2002:a00:1:1::1", "10.0.0.1"},
	{"2002:c0a8:101::", "192.168.1.1"},
	// Teredo 2001::/32: server IPv4 in bits 32-63; client IPv4 is the
	// last 32 bits inverted. Each case leaves the other address public.
	{"2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"},       // client
	{"2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"},        // client
	{"2001:0:7f00:1:0:0:f7f7:f7f7", "127.0.0.1"},                // server
	{"2001:0:a9fe:a9fe:8000:63bf:f7f7:f7f7", "169.254.169.254"}, // server
	// ISATAP interface identifiers ::0:5efe:a.b.c.d and ::200:5efe:a.b.c.d
	// under any (here public) /64.
	{"2a00:1450:4001:81c:0:5efe:7f00:1", "127.0.0.1"},
	{"2a00:1450:4001:81c:200:5efe:a00:1", "10.0.0.1"},
	{"2a00:1450:4001:81c:0:5efe:a9fe:a9fe", "169.254.169.254"},

	// Reserved and special-purpose IPv4.
	{"0.1.2.3", ""},
	{"240.0.0.1", ""},
	{"254.255.255.255", ""},
	{"255.255.255.255", ""},
	{"100.64.0.1", ""},
	{"100.127.255.254", ""},
	{"192.0.0.8", ""},
	{"192.0.2.1", ""},
	{"198.18.0.1", ""},
	{"198.19.255.254", ""},
	{"198.51.100.1", ""},
	{"203.0.113.1", ""},
	// Reserved and special-purpose IPv6.
	{"::", ""},
	{"::1", ""},
	{"100::1", ""},
	{"2001:db8::1", ""},
	{"2001:2::1", ""},
	{"3fff::1", ""},
	{"fc00::1", ""},
	{"fd12:3456::1", ""},
	{"fe80::1", ""},
	{"fec0::1", ""},
	{"ff02::1", ""},
	{"64:ff9b:1::1:2:3:4", ""},
}

// publicDsts must stay reachable through the default policy: public IPv4
// and IPv6, and the embedding forms when what they carry is public.
var publicDsts = []string{
	"8.8.8.8", "1.1.1.1", "193.0.14.129",
	"2606:4700:4700::1111", "2a00:1450:4001:81c::200e",
	"::ffff:8.8.8.8",
	"64:ff9b::808:808",
	"2002:808:808::1",
	"2001:0:4136:e378:8000:63bf:f7f7:f7f7", // server 65.54.227.120, client 8.8.8.8
	"2a00:1450:4001:81c:0:5efe:808:808",
	"2a00:1450:4001:81c:200:5efe:101:101",
}

func hostPort(a string, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(a), port)
}

// TestDefaultRejectsEmbeddedAndReserved is the attack: a client asks the
// exit for each hostile destination, over every protocol. Both the exit's
// full default policy and the summary clients judge it by must refuse.
func TestDefaultRejectsEmbeddedAndReserved(t *testing.T) {
	full := Default()
	sum, err := ParseSummary(full.Summary())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range hostileDsts {
		for _, proto := range []string{"tcp", "udp", "icmp"} {
			port := uint16(80)
			if proto == "icmp" {
				port = 0
			}
			dst := hostPort(tc.dst, port)
			for name, p := range map[string]*Policy{"Default()": full, "summary": sum} {
				if ok, r := p.Allows(proto, dst); ok {
					t.Errorf("%s allows %s %s (carries %q) by rule %+v", name, proto, tc.dst, tc.via, r)
				}
				// The reason names the address that was judged.
				v := p.Check(proto, dst)
				if tc.via != "" && (v.Judged != netip.MustParseAddr(tc.via) || !strings.Contains(v.String(), tc.via)) {
					t.Errorf("%s: reason %q for %s does not name %s", name, v, tc.dst, tc.via)
				}
			}
		}
	}
	for _, a := range publicDsts {
		if ok, r := full.Allows("tcp", hostPort(a, 443)); !ok {
			t.Errorf("Default() rejects public %s by rule %+v", a, r)
		}
	}
}

// embedForms builds, for an IPv4 address a, each IPv6 form that carries
// it. Bits the form leaves free are filled from r, so that the
// destination itself is as often public as private.
var embedForms = []struct {
	name  string
	embed func(a [4]byte, r *rand.Rand) netip.Addr
}{
	{"IPv4-mapped", func(a [4]byte, _ *rand.Rand) netip.Addr {
		return netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: a[0], 13: a[1], 14: a[2], 15: a[3]})
	}},
	{"IPv4-compatible", func(a [4]byte, _ *rand.Rand) netip.Addr {
		return netip.AddrFrom16([16]byte{12: a[0], 13: a[1], 14: a[2], 15: a[3]})
	}},
	{"IPv4-translated", func(a [4]byte, _ *rand.Rand) netip.Addr {
		return netip.AddrFrom16([16]byte{8: 0xff, 9: 0xff, 12: a[0], 13: a[1], 14: a[2], 15: a[3]})
	}},
	{"NAT64", func(a [4]byte, _ *rand.Rand) netip.Addr {
		return netip.AddrFrom16([16]byte{0: 0, 1: 0x64, 2: 0xff, 3: 0x9b, 12: a[0], 13: a[1], 14: a[2], 15: a[3]})
	}},
	{"NAT64 local-use /48", func(a [4]byte, r *rand.Rand) netip.Addr {
		b := [16]byte{1: 0x64, 2: 0xff, 3: 0x9b, 5: 1, 6: a[0], 7: a[1], 9: a[2], 10: a[3]}
		fill(b[11:], r)
		return netip.AddrFrom16(b)
	}},
	{"6to4", func(a [4]byte, r *rand.Rand) netip.Addr {
		b := [16]byte{0: 0x20, 1: 0x02, 2: a[0], 3: a[1], 4: a[2], 5: a[3]}
		fill(b[6:], r)
		return netip.AddrFrom16(b)
	}},
	{"Teredo server", func(a [4]byte, r *rand.Rand) netip.Addr {
		b := [16]byte{0: 0x20, 1: 0x01, 4: a[0], 5: a[1], 6: a[2], 7: a[3]}
		fill(b[8:12], r)
		binary.BigEndian.PutUint32(b[12:], ^binary.BigEndian.Uint32([]byte{8, 8, 8, 8}))
		return netip.AddrFrom16(b)
	}},
	{"Teredo client", func(a [4]byte, r *rand.Rand) netip.Addr {
		b := [16]byte{0: 0x20, 1: 0x01, 4: 65, 5: 54, 6: 227, 7: 120}
		fill(b[8:12], r)
		binary.BigEndian.PutUint32(b[12:], ^binary.BigEndian.Uint32(a[:]))
		return netip.AddrFrom16(b)
	}},
	{"ISATAP", func(a [4]byte, r *rand.Rand) netip.Addr {
		var b [16]byte
		fill(b[:8], r)
		b[8] = byte(r.IntN(2)) * 2 // ::0:5efe or ::200:5efe
		b[10], b[11] = 0x5e, 0xfe
		copy(b[12:], a[:])
		return netip.AddrFrom16(b)
	}},
}

func fill(b []byte, r *rand.Rand) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// randomV4 draws IPv4 addresses that are often special: a random prefix
// of the default private set half the time, anything otherwise.
func randomV4(r *rand.Rand) [4]byte {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], r.Uint32())
	if r.IntN(2) == 0 {
		special := []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("192.168.0.0/16"),
			netip.MustParsePrefix("240.0.0.0/4"), netip.MustParsePrefix("0.0.0.0/8"),
			netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("198.18.0.0/15"),
		}[r.IntN(8)]
		base := special.Addr().As4()
		for i := range a {
			bits := min(max(special.Bits()-8*i, 0), 8)
			mask := byte(0xff << (8 - bits))
			a[i] = base[i]&mask | a[i]&^mask
		}
	}
	return a
}

// propertyPolicies are policies that accept IPv6 broadly, so that only the
// judgement of the embedded address can refuse an embedding.
func propertyPolicies(t testing.TB) []*Policy {
	var out []*Policy
	for _, lines := range [][]string{
		{"reject private", "accept *"},
		{"reject 127.0.0.0/8", "reject 10.0.0.0/8", "accept *6", "accept *4:80,443"},
		{"accept *6", "reject *4"},
		{"reject udp *4", "accept *"},
		{"accept [2002::]/16", "accept [2001::]/32", "accept [64:ff9b::]/96", "accept 8.0.0.0/7"},
	} {
		p, err := Parse(lines)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// checkNotMorePermissive fails when the policy accepts an embedding of a
// but refuses a itself.
func checkNotMorePermissive(t testing.TB, p *Policy, proto string, a [4]byte, port uint16, form string, e netip.Addr) {
	t.Helper()
	v4 := netip.AddrFrom4(a)
	okA, _ := p.Allows(proto, netip.AddrPortFrom(v4, port))
	okE, r := p.Allows(proto, netip.AddrPortFrom(e, port))
	if okE && !okA {
		t.Fatalf("policy %q accepts %s %s (%s of %s, by rule %+v) but rejects %s itself",
			p.String(), proto, e, form, v4, r, v4)
	}
}

// TestEmbeddingNeverMorePermissive: for random IPv4 a and every form that
// embeds it, the verdict for the embedding is never more permissive than
// the verdict for a.
func TestEmbeddingNeverMorePermissive(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 6052))
	pols := propertyPolicies(t)
	for range 20000 {
		a := randomV4(r)
		port := uint16(1 + r.IntN(1000))
		proto := []string{"tcp", "udp", "icmp"}[r.IntN(3)]
		p := pols[r.IntN(len(pols))]
		for _, f := range embedForms {
			checkNotMorePermissive(t, p, proto, a, port, f.name, f.embed(a, r))
		}
	}
}

func FuzzEmbeddingNeverMorePermissive(f *testing.F) {
	f.Add(uint32(0x7f000001), uint16(80), uint64(0), uint8(0), uint8(0))
	f.Add(uint32(0xa9fea9fe), uint16(443), uint64(1), uint8(5), uint8(3))
	f.Add(uint32(0xf0000001), uint16(53), uint64(2), uint8(8), uint8(1))
	pols := propertyPolicies(f)
	f.Fuzz(func(t *testing.T, v4 uint32, port uint16, seed uint64, form, pol uint8) {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], v4)
		r := rand.New(rand.NewPCG(seed, seed>>7))
		fm := embedForms[int(form)%len(embedForms)]
		p := pols[int(pol)%len(pols)]
		for _, proto := range []string{"tcp", "udp", "icmp"} {
			checkNotMorePermissive(t, p, proto, a, port, fm.name, fm.embed(a, r))
		}
	})
}

func TestVerdictString(t *testing.T) {
	p, err := Parse([]string{"reject 127.0.0.0/8", "accept *:80"})
	if err != nil {
		t.Fatal(err)
	}
	for dst, want := range map[string]string{
		"[2002:7f00:1::1]:80":   "reject 127.0.0.1 (6to4 in 2002:7f00:1::1) by rule reject 127.0.0.0/8",
		"[64:ff9b::7f00:1]:80":  "reject 127.0.0.1 (NAT64 in 64:ff9b::7f00:1) by rule reject 127.0.0.0/8",
		"[::ffff:127.0.0.1]:80": "reject 127.0.0.1 (IPv4-mapped in ::ffff:127.0.0.1) by rule reject 127.0.0.0/8",
		"[2002:808:808::1]:80":  "accept 2002:808:808::1 by rule accept *:80",
		"[2002:808:808::1]:81":  "reject 8.8.8.8 (6to4 in 2002:808:808::1): no rule matched",
		"8.8.8.8:80":            "accept 8.8.8.8 by rule accept *:80",
	} {
		if got := p.Check("tcp", ap(dst)).String(); got != want {
			t.Errorf("Check(%s) = %q, want %q", dst, got, want)
		}
	}
}

// Check runs on every packet an exit forwards: it must not allocate.
func TestCheckDoesNotAllocate(t *testing.T) {
	p := Default()
	dsts := []netip.AddrPort{ap("8.8.8.8:443"), ap("[2606:4700:4700::1111]:443"),
		ap("[64:ff9b:1:a9fe:a9:fe00::]:80"), ap("[2001:0:4136:e378:8000:63bf:f7f7:f7f7]:80")}
	if n := testing.AllocsPerRun(200, func() {
		for _, d := range dsts {
			p.Check("tcp", d)
		}
	}); n != 0 {
		t.Fatalf("Check allocates %v times per run", n)
	}
}

func TestEmbeddedIPv4Forms(t *testing.T) {
	for a, want := range map[string]string{
		"::ffff:10.0.0.1":                      "IPv4-mapped 10.0.0.1",
		"::10.0.0.1":                           "IPv4-compatible 10.0.0.1",
		"::ffff:0:a00:1":                       "IPv4-translated 10.0.0.1",
		"64:ff9b::a00:1":                       "NAT64 10.0.0.1",
		"64:ff9b:1:a00:1:203:400:0":            "NAT64 local-use 10.0.1.2; NAT64 local-use 0.1.2.3; NAT64 local-use 1.2.3.4; NAT64 local-use 4.0.0.0",
		"2002:a00:1::":                         "6to4 10.0.0.1",
		"2001:0:4136:e378:8000:63bf:f5ff:fffe": "Teredo server 65.54.227.120; Teredo client 10.0.0.1",
		"fe80::5efe:a00:1":                     "ISATAP 10.0.0.1",
		"2a00::200:5efe:a00:1":                 "ISATAP 10.0.0.1",
		"2a00::100:5efe:a00:1":                 "",
		"2a00::5eff:a00:1":                     "",
		"2606:4700:4700::1111":                 "",
		"10.0.0.1":                             "",
		"64:ff9b::1:a00:1":                     "",
		"::":                                   "",
		"::1":                                  "",
		"::2":                                  "IPv4-compatible 0.0.0.2",
	} {
		var parts []string
		for _, e := range EmbeddedIPv4(nil, netip.MustParseAddr(a)) {
			parts = append(parts, e.Form+" "+e.Addr.String())
		}
		if got := strings.Join(parts, "; "); got != want {
			t.Errorf("EmbeddedIPv4(%s) = %q, want %q", a, got, want)
		}
	}
}

// A long policy that rejects "private" keeps the keyword in its summary
// instead of spelling out, and then merging, the ranges relevant to its
// accepts (which turned 192.0.2.0/24 and 192.168.0.0/16 into 192.0.0.0/8).
func TestSummaryKeepsPrivateBlock(t *testing.T) {
	lines := []string{"reject private"}
	for i := range 30 {
		lines = append(lines, "reject 45."+strconv.Itoa(i)+".0.0/16:25")
	}
	lines = append(lines, "accept *4:80,443")
	p, err := Parse(lines)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.String()) <= MaxSummary {
		t.Fatalf("policy too short to need shrinking: %d bytes", len(p.String()))
	}
	if s := p.Summary(); s != "reject private; accept *4:80,443" {
		t.Fatalf("Summary() = %q", s)
	}
}
