package exitpolicy

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestParseAndAllows(t *testing.T) {
	p, err := Parse([]string{
		"reject 10.0.0.0/8",
		"# comment",
		"",
		"accept 0.0.0.0/0:80,443",
		"accept udp 0.0.0.0/0:53",
		"reject *:25",
		"accept [::]/0:1-65535",
		"accept icmp *4",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		proto string
		dst   string
		want  bool
	}{
		{"tcp", "10.1.2.3:80", false},
		{"tcp", "192.0.2.1:80", true},
		{"tcp", "192.0.2.1:443", true},
		{"tcp", "192.0.2.1:444", false},
		{"udp", "192.0.2.1:53", true},
		{"tcp", "192.0.2.1:53", false},
		{"tcp", "[2001:db8::1]:25", false},
		{"tcp", "[2001:db8::1]:26", true},
		{"udp", "[2001:db8::1]:5353", true},
		{"icmp", "192.0.2.1:0", true},
		{"icmp", "[2001:db8::1]:0", false}, // port 0 is outside 1-65535
		{"tcp", "[::ffff:10.0.0.1]:80", false},
		{"tcp", "[::ffff:192.0.2.1]:80", true},
	}
	for _, tc := range tests {
		got, r := p.Allows(tc.proto, ap(tc.dst))
		if got != tc.want {
			t.Errorf("Allows(%s, %s) = %v (rule %+v), want %v", tc.proto, tc.dst, got, r, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		lines []string
		index string
		token string
	}{
		{[]string{"accept *:80", "allow *:80"}, "rule 2", `"allow"`},
		{[]string{"accept sctp *:80"}, "rule 1", `"sctp"`},
		{[]string{"accept 300.1.1.1/8"}, "rule 1", `"300.1.1.1/8"`},
		{[]string{"accept *:0"}, "rule 1", `"0"`},
		{[]string{"accept *:90-80"}, "rule 1", `"90-80"`},
		{[]string{"accept *:65536"}, "rule 1", `"65536"`},
		{[]string{"accept [10.0.0.1]:80"}, "rule 1", `"[10.0.0.1]:80"`},
		{[]string{"accept [::1"}, "rule 1", `"[::1"`},
		{[]string{"accept icmp *:80"}, "rule 1", `"*:80"`},
		{[]string{"accept"}, "rule 1", "tokens"},
		{[]string{"x", "accept a b c"}, "rule 1", `"x"`},
	}
	for _, tc := range tests {
		_, err := Parse(tc.lines)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", tc.lines)
			continue
		}
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tc.index) || !strings.Contains(err.Error(), tc.token) {
			t.Errorf("Parse(%q) = %v, want ErrSyntax naming %s and %s", tc.lines, err, tc.index, tc.token)
		}
	}
}

func TestDefaultRejectsEachClass(t *testing.T) {
	p := Default()
	for _, dst := range []string{
		"127.0.0.1:80", "127.9.9.9:80", "[::1]:80", "[::ffff:127.0.0.1]:80",
		"10.0.0.1:80", "172.16.0.1:80", "172.31.255.255:80", "192.168.1.1:80", "[fd00::1]:80", "[fc00::1]:80",
		"100.64.0.1:80", "100.127.255.255:80",
		"169.254.1.1:80", "[fe80::1]:80",
		"224.0.0.1:80", "239.255.255.250:1900", "[ff02::1]:80",
		"0.0.0.0:80", "[::]:80", "255.255.255.255:80",
	} {
		for _, proto := range []string{"tcp", "udp", "icmp"} {
			if ok, _ := p.Allows(proto, ap(dst)); ok {
				t.Errorf("Default allows %s %s", proto, dst)
			}
		}
	}
	// Public addresses only: the documentation ranges (192.0.2.0/24,
	// 2001:db8::/32) are themselves "private" now.
	for _, dst := range []string{"193.0.14.129:80", "8.8.8.8:53", "[2606:4700:4700::1111]:443", "172.32.0.1:80", "100.128.0.1:80"} {
		if ok, _ := p.Allows("tcp", ap(dst)); !ok {
			t.Errorf("Default rejects %s", dst)
		}
	}
	if s := p.Summary(); s != "reject private; accept *" {
		t.Errorf("Default().Summary() = %q", s)
	}
}

func TestStringRoundTrip(t *testing.T) {
	in := []string{
		"reject private",
		"accept tcp 192.0.2.0/24:80,443,8000-8080",
		"reject [2001:db8::]/32:25",
		"accept [2001:db8::1]",
		"accept *6:22",
		"accept icmp *",
		"reject *4",
	}
	p, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(in, "; ")
	if got := p.String(); got != want {
		t.Fatalf("String() = %q\nwant      %q", got, want)
	}
	q, err := ParseSummary(p.String())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Rules, q.Rules) {
		t.Fatalf("round trip changed rules:\n%v\n%v", p.Rules, q.Rules)
	}
}

func TestNoMatchRejects(t *testing.T) {
	p, _ := Parse([]string{"accept *:80"})
	if ok, r := p.Allows("tcp", ap("192.0.2.1:81")); ok || r != (Rule{}) {
		t.Fatalf("unmatched destination: %v %+v", ok, r)
	}
	var nilp *Policy
	if ok, _ := nilp.Allows("tcp", ap("192.0.2.1:80")); ok {
		t.Fatal("nil policy allows")
	}
}

// randomRule draws rules whose prefixes cluster in a few networks so
// that random destinations often hit them.
func randomRule(r *rand.Rand) Rule {
	var rule Rule
	rule.Action = Action(1 + r.IntN(2))
	rule.Proto = []string{"", "", "tcp", "udp", "icmp"}[r.IntN(5)]
	switch r.IntN(6) {
	case 0:
		// any
	case 1, 2, 3:
		a := netip.AddrFrom4([4]byte{byte(10 + r.IntN(3)), byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
		rule.Prefix, _ = a.Prefix(8 + r.IntN(25))
	default:
		b := [16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(3))}
		b[15] = byte(r.IntN(256))
		rule.Prefix, _ = netip.AddrFrom16(b).Prefix(24 + r.IntN(105))
	}
	if rule.Proto != "icmp" && r.IntN(3) > 0 {
		lo := uint16(1 + r.IntN(100))
		rule.PortLo, rule.PortHi = lo, lo+uint16(r.IntN(20))
	}
	return rule
}

func randomDst(r *rand.Rand) (string, netip.AddrPort) {
	proto := []string{"tcp", "udp", "icmp"}[r.IntN(3)]
	var a netip.Addr
	if k := r.IntN(4); k < 2 {
		a = netip.AddrFrom4([4]byte{byte(10 + r.IntN(3)), byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
		if k == 1 { // the same, carried in an IPv6 form
			f := embedForms[r.IntN(len(embedForms))]
			a = f.embed(a.As4(), r)
		}
	} else {
		b := [16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(3))}
		b[15] = byte(r.IntN(256))
		a = netip.AddrFrom16(b)
	}
	port := uint16(1 + r.IntN(130))
	if proto == "icmp" {
		port = 0
	}
	return proto, netip.AddrPortFrom(a, port)
}

// TestSummaryConservative: whatever the summary accepts, the full policy
// accepts, for policies both short and far too long for 256 bytes.
func TestSummaryConservative(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	shrunk := 0
	for iter := 0; iter < 400; iter++ {
		p := &Policy{}
		for range 1 + r.IntN(60) {
			p.Rules = append(p.Rules, randomRule(r))
		}
		s := p.Summary()
		if len(s) > MaxSummary {
			t.Fatalf("summary is %d bytes: %q", len(s), s)
		}
		if s != p.String() {
			shrunk++
		}
		q, err := ParseSummary(s)
		if err != nil {
			t.Fatalf("ParseSummary(%q): %v", s, err)
		}
		for range 300 {
			proto, dst := randomDst(r)
			if ok, _ := q.Allows(proto, dst); ok {
				if full, _ := p.Allows(proto, dst); !full {
					t.Fatalf("summary %q accepts %s %s, policy %q rejects it", s, proto, dst, p.String())
				}
			}
		}
	}
	if shrunk < 50 {
		t.Fatalf("only %d of 400 policies needed shrinking; the test is too weak", shrunk)
	}
}

func TestSummaryKeepsUsefulAccepts(t *testing.T) {
	lines := []string{}
	for i := range 40 {
		lines = append(lines, "reject 198.51."+strconv.Itoa(i)+".0/24")
	}
	lines = append(lines, "reject private", "accept *:80,443")
	p, err := Parse(lines)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Summary()
	q, err := ParseSummary(s)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := q.Allows("tcp", ap("8.8.8.8:443")); !ok {
		t.Fatalf("summary %q lost the web accept", s)
	}
	if ok, _ := q.Allows("tcp", ap("198.51.7.1:443")); ok {
		t.Fatalf("summary %q accepts a rejected net", s)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("accept 0.0.0.0/0:80,443\nreject 10.0.0.0/8\naccept [::]/0:1-65535\nreject *:25\naccept udp 0.0.0.0/0:53")
	f.Add("reject private\naccept *")
	f.Add("accept [fe80::1%eth0]:80")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(strings.Split(s, "\n"))
		if err != nil {
			return
		}
		q, err := ParseSummary(p.String())
		if err != nil && len(p.String()) <= MaxSummary {
			t.Fatalf("String %q does not parse: %v", p.String(), err)
		}
		if err == nil && !reflect.DeepEqual(p.Rules, q.Rules) && !(len(p.Rules) == 0 && len(q.Rules) == 0) {
			t.Fatalf("round trip changed %q", p.String())
		}
		if len(p.Summary()) > MaxSummary {
			t.Fatal("summary too long")
		}
	})
}

func FuzzParseSummary(f *testing.F) {
	f.Add("reject private; accept *")
	f.Add("accept tcp *:80,443; reject *")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSummary(s)
		if err != nil {
			return
		}
		sum := p.Summary()
		q, err := ParseSummary(sum)
		if err != nil {
			t.Fatalf("summary %q does not parse: %v", sum, err)
		}
		if len(q.String()) > MaxSummary {
			t.Fatalf("summary %q re-formats too long", sum)
		}
	})
}
