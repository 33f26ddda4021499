package mimic

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/domain"
)

func testID(n int) [32]byte {
	return sha256.Sum256(binary.BigEndian.AppendUint64([]byte("test-id"), uint64(n)))
}

// layout builds members spread over tops /16s, mids /24s in each and hosts
// per /24, numbering IDs from base.
func layout(base, tops, mids, hosts int) []Member {
	var ms []Member
	for a := range tops {
		for b := range mids {
			for c := range hosts {
				addr := netip.AddrFrom4([4]byte{byte(10 + a/256), byte(a), byte(b), byte(c + 1)})
				ms = append(ms, Member{ID: testID(base + len(ms)), Addr: addr})
			}
		}
	}
	return ms
}

func setOf(ids [][32]byte) map[[32]byte]bool {
	s := make(map[[32]byte]bool, len(ids))
	for _, id := range ids {
		s[id] = true
	}
	return s
}

func TestEpoch(t *testing.T) {
	tests := []struct {
		t      time.Time
		length time.Duration
		want   uint64
	}{
		{time.Unix(0, 0), time.Hour, 0},
		{time.Unix(86399, 999999999), 24 * time.Hour, 0},
		{time.Unix(86400, 0), 24 * time.Hour, 1},
		{time.Unix(10, 500_000_000), 500 * time.Millisecond, 21},
		{time.Unix(-5, 0), time.Second, 0},
		{time.Unix(1<<40, 0), time.Second, 1 << 40}, // far past UnixNano's range
		{time.Unix(7, 0), 0, 7_000_000_000},         // bad length does not panic
	}
	for _, tt := range tests {
		if got := Epoch(tt.t, tt.length); got != tt.want {
			t.Errorf("Epoch(%v, %v) = %d, want %d", tt.t.Unix(), tt.length, got, tt.want)
		}
	}
}

func TestDeterministicAndOrderIndependent(t *testing.T) {
	ms := layout(0, 20, 3, 4)
	shuffled := slices.Clone(ms)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) {
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	})
	a, b := NewTable(ms, 7, 6), NewTable(shuffled, 7, 6)
	for _, m := range ms {
		if ca, cb := a.Chosen(m.ID), b.Chosen(m.ID); !slices.Equal(ca, cb) {
			t.Fatalf("member %x: choices depend on input order: %x vs %x", m.ID[:4], ca, cb)
		}
	}
}

func TestChosenProperties(t *testing.T) {
	ms := append(layout(0, 30, 2, 3), layout(1000, 1, 1, 50)...) // one crowded /16 beside 30 small ones
	const k = 6
	tab := NewTable(ms, 3, k)
	if tab.Len() != len(ms) || tab.Epoch() != 3 || tab.K() != k {
		t.Fatalf("Len, Epoch, K = %d, %d, %d", tab.Len(), tab.Epoch(), tab.K())
	}
	for _, m := range ms {
		cs := tab.Chosen(m.ID)
		if len(cs) != k {
			t.Errorf("member %x chose %d mimics, want %d", m.ID[:4], len(cs), k)
		}
		if len(setOf(cs)) != len(cs) {
			t.Errorf("member %x chose duplicates: %x", m.ID[:4], cs)
		}
		for _, c := range cs {
			if c == m.ID {
				t.Errorf("member %x chose itself", m.ID[:4])
			}
			cm, ok := tab.Member(c)
			if !ok {
				t.Fatalf("chosen %x is not a member", c[:4])
			}
			if domain.SameTop(cm.Addr, m.Addr) {
				t.Errorf("member %x (%s) chose %x in its own /16 (%s)", m.ID[:4], m.Addr, c[:4], cm.Addr)
			}
		}
	}
}

func TestSingleTopDomainChoosesInside(t *testing.T) {
	ms := layout(0, 1, 4, 5)
	tab := NewTable(ms, 1, 6)
	for _, m := range ms {
		cs := tab.Chosen(m.ID)
		if len(cs) != 6 || setOf(cs)[m.ID] {
			t.Errorf("member %x chose %x: want 6 others in the only /16", m.ID[:4], cs)
		}
	}
}

func TestSymmetry(t *testing.T) {
	ms := layout(0, 25, 2, 2)
	tab := NewTable(ms, 11, 6)
	total := 0
	for _, a := range ms {
		set := tab.Mimics(a.ID)
		total += len(set)
		if !slices.IsSortedFunc(set, func(x, y [32]byte) int { return bytes.Compare(x[:], y[:]) }) {
			t.Errorf("Mimics(%x) is not sorted", a.ID[:4])
		}
		if len(setOf(set)) != len(set) {
			t.Errorf("Mimics(%x) has duplicates", a.ID[:4])
		}
		in := setOf(set)
		for _, c := range tab.Chosen(a.ID) {
			if !in[c] {
				t.Errorf("Mimics(%x) misses its own choice %x", a.ID[:4], c[:4])
			}
		}
		for _, b := range ms {
			ab, ba := tab.AreMimics(a.ID, b.ID), tab.AreMimics(b.ID, a.ID)
			if ab != ba {
				t.Fatalf("AreMimics(%x, %x) = %v but reverse = %v", a.ID[:4], b.ID[:4], ab, ba)
			}
			if ab != in[b.ID] {
				t.Fatalf("AreMimics(%x, %x) = %v but Mimics says %v", a.ID[:4], b.ID[:4], ab, in[b.ID])
			}
			if ab != (slices.Contains(tab.Chosen(a.ID), b.ID) || slices.Contains(tab.Chosen(b.ID), a.ID)) {
				t.Fatalf("AreMimics(%x, %x) disagrees with Chosen", a.ID[:4], b.ID[:4])
			}
		}
	}
	// Each node ends with about 2k mimics (fewer when two choose each other).
	if avg := float64(total) / float64(len(ms)); avg < 10 || avg > 12 {
		t.Errorf("average mimic set size %.2f, want about 2k = 12", avg)
	}
	var stranger [32]byte
	if tab.Chosen(stranger) != nil || tab.Mimics(stranger) != nil || tab.AreMimics(stranger, ms[0].ID) {
		t.Errorf("a non-member has mimics")
	}
}

func TestEpochReshuffles(t *testing.T) {
	ms := layout(0, 40, 3, 3)
	a, b := NewTable(ms, 100, 6), NewTable(ms, 101, 6)
	same, total := 0, 0
	for _, m := range ms {
		sb := setOf(b.Chosen(m.ID))
		for _, c := range a.Chosen(m.ID) {
			total++
			if sb[c] {
				same++
			}
		}
	}
	// By chance about k/(n-1) of the choices repeat: under 2% here.
	if frac := float64(same) / float64(total); frac > 0.05 {
		t.Errorf("%.1f%% of choices survive an epoch change, want a reshuffle", 100*frac)
	}
}

// TestDomainUniformity checks that selection is uniform over domains, not
// nodes: a node alone in its /16 weighs as much as a /16 of 100 nodes.
func TestDomainUniformity(t *testing.T) {
	lone := Member{ID: testID(1_000_000), Addr: netip.MustParseAddr("192.0.2.1")}
	big := layout(0, 1, 10, 10)          // 100 nodes in 10.0.0.0/16
	choosers := layout(10_000, 1, 5, 20) // 100 nodes in another /16
	for i := range choosers {
		choosers[i].Addr = netip.AddrFrom4([4]byte{172, 16, byte(i / 20), byte(i%20 + 1)})
	}
	ms := append(append([]Member{lone}, big...), choosers...)
	bigSet := setOf(nil)
	for _, m := range big {
		bigSet[m.ID] = true
	}

	// With k = 1 each chooser makes one pick between the two other /16s.
	// Which /16 depends only on the chooser's /16 and the epoch, so the
	// hundred choosers make one draw per epoch between them.
	loneHits, bigHits := 0, 0
	perBig := map[[32]byte]int{}
	const epochs = 200
	for e := range uint64(epochs) {
		tab := NewTable(ms, e, 1)
		first := tab.Chosen(choosers[0].ID)
		for _, c := range choosers {
			cs := tab.Chosen(c.ID)
			if len(cs) == 1 && len(first) == 1 && (cs[0] == lone.ID) != (first[0] == lone.ID) {
				t.Fatalf("epoch %d: choosers in one /16 chose different /16s", e)
			}
			for _, id := range cs {
				switch {
				case id == lone.ID:
					loneHits++
				case bigSet[id]:
					bigHits++
					perBig[id]++
				default:
					t.Fatalf("chooser in 172.16/16 chose its own /16")
				}
			}
		}
	}
	picks := loneHits + bigHits
	if picks != epochs*len(choosers) {
		t.Fatalf("%d picks, want %d", picks, epochs*len(choosers))
	}
	if frac := float64(loneHits) / float64(picks); frac < 0.4 || frac > 0.6 {
		t.Errorf("lone /16 got %.1f%% of picks, want about 50%%", 100*frac)
	}
	maxBig := 0
	for _, n := range perBig {
		maxBig = max(maxBig, n)
	}
	if loneHits < 10*maxBig {
		t.Errorf("lone node picked %d times, busiest member of the big /16 %d times: want the lone node far ahead", loneHits, maxBig)
	}

	// Within the big /16 the ten /24s share the picks about evenly.
	per24 := map[netip.Prefix]int{}
	for _, m := range big {
		per24[domain.Of(m.Addr)[domain.MiddleLevel]] += perBig[m.ID]
	}
	for p, n := range per24 {
		if want := bigHits / 10; n < want/2 || n > want*2 {
			t.Errorf("%s got %d of %d picks, want about %d", p, n, bigHits, want)
		}
	}
}

// changed counts, over the members of both tables, the choices of a that b
// does not share.
func changed(a, b *Table, ms []Member) (diff, total int) {
	for _, m := range ms {
		sb := setOf(b.Chosen(m.ID))
		for _, c := range a.Chosen(m.ID) {
			total++
			if !sb[c] {
				diff++
			}
		}
	}
	return diff, total
}

func TestStabilityRemoveOne(t *testing.T) {
	ms := append(layout(0, 60, 2, 2), layout(5000, 3, 4, 10)...)
	full := NewTable(ms, 9, 6)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10 {
		gone := rng.IntN(len(ms))
		rest := slices.Delete(slices.Clone(ms), gone, gone+1)
		diff, total := changed(full, NewTable(rest, 9, 6), rest)
		// Only the members that chose the removed one must move, plus
		// the odd knock-on effect: about k of 6n choices.
		if frac := float64(diff) / float64(total); frac > 0.01 {
			t.Errorf("removing %s changed %d of %d choices (%.2f%%)", ms[gone].Addr, diff, total, 100*frac)
		}
	}
}

func TestStabilityDifferentViews(t *testing.T) {
	ms := layout(0, 100, 2, 3) // 600 members, 100 /16s
	rng := rand.New(rand.NewPCG(5, 6))
	perm := rng.Perm(len(ms))
	// Each view misses 5 members the other has; no domain disappears.
	missA, missB := setOf(nil), setOf(nil)
	for _, j := range perm[:5] {
		missA[ms[j].ID] = true
	}
	for _, j := range perm[5:10] {
		missB[ms[j].ID] = true
	}
	var viewA, viewB, common []Member
	for _, m := range ms {
		if !missA[m.ID] {
			viewA = append(viewA, m)
		}
		if !missB[m.ID] {
			viewB = append(viewB, m)
		}
		if !missA[m.ID] && !missB[m.ID] {
			common = append(common, m)
		}
	}
	diff, total := changed(NewTable(viewA, 4, 6), NewTable(viewB, 4, 6), common)
	if frac := float64(diff) / float64(total); frac > 0.03 {
		t.Errorf("views differing by 10 of 600 members disagree on %d of %d choices (%.1f%%)", diff, total, 100*frac)
	}

	// New /16s take their fair share of picks and no more: 4 new domains
	// among 104 move about 4% of the choices.
	extra := layout(90_000, 4, 1, 1)
	for i := range extra {
		extra[i].Addr = netip.AddrFrom4([4]byte{100, byte(i), 0, 1})
	}
	diff, total = changed(NewTable(ms, 4, 6), NewTable(append(slices.Clone(ms), extra...), 4, 6), ms)
	if frac := float64(diff) / float64(total); frac > 0.08 {
		t.Errorf("adding 4 /16s to 100 changed %d of %d choices (%.1f%%), want about 4%%", diff, total, 100*frac)
	}
}

func TestSmallNetworks(t *testing.T) {
	addrs := []string{"10.0.0.1", "10.1.0.1", "10.2.0.1", "10.0.0.2", "10.0.0.3"}
	tests := []struct {
		name  string
		addrs []int // indexes into addrs
		want  []int // chosen count per member
	}{
		{"empty", nil, nil},
		{"one", []int{0}, []int{0}},
		{"two /16s", []int{0, 1}, []int{1, 1}},
		{"two in one /16", []int{0, 3}, []int{1, 1}},
		{"three /16s", []int{0, 1, 2}, []int{2, 2, 2}},
		{"three in one /16", []int{0, 3, 4}, []int{2, 2, 2}},
		{"two in one /16 and one apart", []int{0, 3, 1}, []int{1, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ms []Member
			for i, a := range tt.addrs {
				ms = append(ms, Member{ID: testID(i), Addr: netip.MustParseAddr(addrs[a])})
			}
			for _, k := range []int{0, 1, 6, 100} {
				tab := NewTable(ms, 1, k)
				for i, m := range ms {
					if got, want := len(tab.Chosen(m.ID)), min(tt.want[i], k); got != want {
						t.Errorf("k=%d: member %d (%s) chose %d, want %d", k, i, m.Addr, got, want)
					}
				}
			}
		})
	}
}

func TestDuplicatesAndInvalidAddresses(t *testing.T) {
	ms := layout(0, 5, 1, 2)
	dup := Member{ID: ms[0].ID, Addr: netip.MustParseAddr("203.0.113.9")}
	bad := Member{ID: testID(999)}
	tab := NewTable(append(append(slices.Clone(ms), dup), bad), 1, 3)
	if tab.Len() != len(ms) {
		t.Fatalf("Len = %d, want %d", tab.Len(), len(ms))
	}
	if m, _ := tab.Member(ms[0].ID); m.Addr != ms[0].Addr {
		t.Errorf("duplicate ID: got address %s, want the first one %s", m.Addr, ms[0].Addr)
	}
	if _, ok := tab.Member(bad.ID); ok {
		t.Errorf("member without an address was admitted")
	}
}

func TestChooseMatchesChosen(t *testing.T) {
	ms := layout(0, 12, 2, 3)
	tab := NewTable(ms, 5, 6)
	for _, m := range ms {
		if a, b := tab.Choose(m), tab.Chosen(m.ID); !slices.Equal(a, b) {
			t.Fatalf("Choose(%x) = %x, Chosen = %x", m.ID[:4], a, b)
		}
	}
	// A newcomer's choices avoid its own /16 like anyone's.
	newcomer := Member{ID: testID(777), Addr: ms[0].Addr.Next()}
	for _, c := range tab.Choose(newcomer) {
		cm, _ := tab.Member(c)
		if domain.SameTop(cm.Addr, newcomer.Addr) {
			t.Errorf("newcomer chose %s in its own /16", cm.Addr)
		}
	}
	if len(tab.Choose(newcomer)) != 6 {
		t.Errorf("newcomer chose %d, want 6", len(tab.Choose(newcomer)))
	}
}

func TestIPv6(t *testing.T) {
	var ms []Member
	for i := range 40 {
		addr := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, byte(i % 8), 0, byte(i % 3), 15: byte(i)})
		ms = append(ms, Member{ID: testID(i), Addr: addr})
	}
	ms = append(ms, Member{ID: testID(100), Addr: netip.MustParseAddr("::ffff:10.9.8.7")})
	tab := NewTable(ms, 2, 6)
	for _, m := range ms {
		cs := tab.Chosen(m.ID)
		if len(cs) != 6 {
			t.Errorf("%s chose %d, want 6", m.Addr, len(cs))
		}
		for _, c := range cs {
			if cm, _ := tab.Member(c); domain.SameTop(cm.Addr, m.Addr) {
				t.Errorf("%s chose %s in its own /32", m.Addr, cm.Addr)
			}
		}
	}
}

// TestGolden pins the selection function: every node must compute the same
// choices, so any change to it is a protocol change (bump "tarzan-mimic-v2").
// The second view has fewer /16s than k, where a node chooses several
// hosts in one /16.
func TestGolden(t *testing.T) {
	h := sha256.New()
	for _, ms := range [][]Member{
		append(layout(0, 8, 2, 2), Member{ID: testID(50), Addr: netip.MustParseAddr("2001:db8::1")}),
		layout(100, 3, 2, 3),
	} {
		tab := NewTable(ms, 20_000, 6)
		for _, m := range ms {
			for _, c := range tab.Chosen(m.ID) {
				h.Write(c[:])
			}
		}
	}
	const want = "19eaa5a500be9d379f544c9eb536723b12aef536672b5c4099fd7cd75bf6acb0"
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != want {
		t.Errorf("selection digest = %s, want %s", got, want)
	}
}

func randomMembers(n int, seed uint64, clustered bool) []Member {
	rng := rand.New(rand.NewPCG(seed, seed))
	ms := make([]Member, n)
	for i := range ms {
		var a [4]byte
		if clustered { // 100 /16s x 10 /24s, about 10 hosts each
			a = [4]byte{10, byte(rng.IntN(100)), byte(rng.IntN(10)), byte(rng.IntN(250) + 1)}
		} else {
			binary.BigEndian.PutUint32(a[:], rng.Uint32())
		}
		ms[i] = Member{ID: testID(i), Addr: netip.AddrFrom4(a)}
	}
	return ms
}

func BenchmarkNewTable(b *testing.B) {
	for _, bc := range []struct {
		name      string
		clustered bool
	}{{"spread", false}, {"clustered", true}} {
		ms := randomMembers(10_000, 1, bc.clustered)
		b.Run(fmt.Sprintf("n=10000/k=6/%s", bc.name), func(b *testing.B) {
			for b.Loop() {
				NewTable(ms, 1, 6)
			}
		})
	}
}
