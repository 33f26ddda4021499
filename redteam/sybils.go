package redteam

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/node"
)

func init() {
	register(Attack{
		Name:     "silent-sybils",
		Finding:  "Sybils that joined with descriptors valid for ten years and then left took down more than half of honest nodes' mimic links",
		Severity: "medium",
		Run:      runSilentSybils,
	})
}

// tenYears is the lifetime the Sybils of the finding signed for.
const tenYears = 10 * 365 * 24 * time.Hour

// runSilentSybils: honest nodes and as many Sybils start together, the
// Sybils with the longest descriptor lifetime a node may have
// (descriptor.MaxLifetime, 7 days). Once every mimic link is up, the
// Sybils leave without a word. Honest nodes whose mimics include a Sybil
// then hold dead links until they stop counting it; the metric is the
// share of honest nodes' mimic links unusable (down, or to a Sybil that
// left) at the end of a bounded wait (PeerSilence plus a margin for the
// liveness pass and new handshakes), which ends early once no honest
// view holds a Sybil and every honest mimic link is up. PeerSilence is shortened (2 s quick, 3 s full) so the
// run takes seconds; a deployment's 10 min scales it.
//
// A link to a Sybil that left counts as unusable even while the honest
// side still has it up (it notices only after LinkTimeout, 3 s here).
//
// Passive: the same share, measured in the same network just before the
// Sybils leave, when nothing has left (0 once StartNet has converged).
// Honest nodes that leave would be the other baseline, and in version 2
// they cost the same (evicted after PeerSilence whatever their lifetime);
// but in version 1 they kept links down until their own descriptors
// expired (3 h by default), so that baseline would have called the
// finding "holds" at any wait shorter than three hours. The property is
// that a peer that left stops costing anyone mimic links within about
// PeerSilence, however long it signed for: measured against "nothing
// left".
//
// Version 1 had no eviction: a peer left a view only when its descriptor
// expired, and lifetimes were not capped, so the Sybils' ten-year
// descriptors kept every honest link to them down for ten years. core/node's
// TestAttackSilentSybils was committed failing on that code (5a1d9ca,
// "all fail on the unchanged code"; PROTOCOL.md §9 records more than half
// of the honest links down): this attack would have measured about 0.5
// there. Version 2 caps lifetimes at 7 days and evicts peers silent for
// PeerSilence. The attack also checks the cap itself: descriptor.Sign
// refuses a ten-year descriptor, descriptor.Parse refuses one encoded by
// hand, node.New refuses a ten-year DescriptorLifetime, and an honest node
// probed with a hand-made ten-year descriptor neither answers nor admits
// it. Any of those accepting, or a Sybil still in an honest view at the
// end, sets Failed.
func runSilentSybils(ctx context.Context, size Size) (Result, error) {
	honest, sybils, k, silence, margin := 8, 8, 2, 2*time.Second, 10*time.Second
	if size == Full {
		honest, sybils, k, silence, margin = 12, 12, 3, 3*time.Second, 15*time.Second
	}
	nt, err := StartNet(ctx, NetConfig{Nodes: honest + sybils, K: k, Wait: 60 * time.Second, Tweak: func(i int, o *node.Options) {
		// Dead links are noticed within seconds, not LinkTimeout's 30.
		o.KeepaliveInterval, o.LinkTimeout = 500*time.Millisecond, 3*time.Second
		o.PeerSilence = silence
		if i >= honest {
			o.DescriptorLifetime = descriptor.MaxLifetime
		}
	}})
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()

	capNote, capFailed, err := tenYearCap(ctx, nt)
	if err != nil {
		return Result{}, err
	}

	isSybil := map[identity.ID]bool{}
	for _, n := range nt.Nodes[honest:] {
		isSybil[n.ID()] = true
		d, err := descriptor.Parse(n.Descriptor(), time.Now())
		if err != nil {
			return Result{}, err
		}
		if life := d.Expires.Sub(d.Published); life != descriptor.MaxLifetime {
			return Result{}, fmt.Errorf("Sybil %s signed for %v, want %v", n.ID().Short(), life, descriptor.MaxLifetime)
		}
	}
	// state: honest mimic links, how many are down, how many go to a
	// Sybil, and Sybil entries in honest views. Once the Sybils have
	// left, a link to one is dead even while it still counts as up (until
	// LinkTimeout): unusable is down or to a Sybil that left.
	gone := false
	state := func() (total, unusable, toSybil, held int) {
		for _, n := range nt.Nodes[:honest] {
			for _, m := range n.Mimics() {
				total++
				if isSybil[m.ID] {
					toSybil++
				}
				if !m.Up || (gone && isSybil[m.ID]) {
					unusable++
				}
			}
			for id := range isSybil {
				if _, ok := n.View().Get(id); ok {
					held++
				}
			}
		}
		return
	}
	total0, down0, toSybil0, _ := state()
	if total0 == 0 {
		return Result{}, errors.New("honest nodes have no mimic links")
	}
	if toSybil0 == 0 {
		return Result{}, errors.New("no honest node chose a Sybil among its mimics in this draw: nothing to measure")
	}
	evictedBefore := uint64(0)
	for _, n := range nt.Nodes[:honest] {
		evictedBefore += n.Stat(node.EventEvictedSilent)
	}

	for _, n := range nt.Nodes[honest:] {
		n.Close()
	}
	for _, n := range nt.Nodes[honest:] {
		n.Wait()
	}
	left := time.Now()
	gone = true
	limit := silence + margin
	peak, peakAt := 0.0, time.Duration(0)
	var total, down, toSybil, held int
	evictedAt := time.Duration(-1)
	for {
		total, down, toSybil, held = state()
		since := time.Since(left)
		share := 0.0
		if total > 0 {
			share = float64(down) / float64(total)
		}
		if share > peak {
			peak, peakAt = share, since
		}
		if held == 0 && evictedAt < 0 {
			evictedAt = since
		}
		if (down == 0 && held == 0 && toSybil == 0) || since > limit {
			break
		}
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	end := time.Since(left)
	evicted := uint64(0)
	for _, n := range nt.Nodes[:honest] {
		evicted += n.Stat(node.EventEvictedSilent)
	}
	evicted -= evictedBefore

	share := 0.0
	if total > 0 {
		share = float64(down) / float64(total)
	}
	var failed string
	switch {
	case held > 0:
		failed = fmt.Sprintf("%d Sybil entries still in honest views %v after the Sybils left", held, end.Round(10*time.Millisecond))
	case capFailed != "":
		failed = capFailed
	}
	evictNote := "not all evicted"
	if evictedAt >= 0 {
		evictNote = fmt.Sprintf("all evicted after %v", evictedAt.Round(10*time.Millisecond))
	}
	return Result{
		Metric:   "share of honest nodes' mimic links down or to a departed Sybil, PeerSilence plus a margin after the Sybils left (the wait ends once none is)",
		Attacker: share,
		Passive:  float64(down0) / float64(total0),
		Failed:   failed,
		Detail: fmt.Sprintf("%d honest + %d Sybils (descriptors for %v), k=%d, PeerSilence %v; before leaving %d of %d honest mimic links went to Sybils, %d down; "+
			"after they left: peak %.2f unusable at %v, %s (%d peers_evicted_silent), %d of %d unusable at %v (bound %v); %s",
			honest, sybils, descriptor.MaxLifetime, k, silence, toSybil0, total0, down0,
			peak, peakAt.Round(10*time.Millisecond), evictNote, evicted, down, total, end.Round(10*time.Millisecond), limit, capNote),
	}, nil
}

// tenYearCap checks that a ten-year descriptor gets nowhere: Sign refuses
// it, Parse refuses one encoded by hand, node.New refuses the lifetime,
// and an honest node probed with one (from an address it lists) neither
// answers nor admits the prober. It returns a note for Detail and, if any
// accepted it, why the property failed.
func tenYearCap(ctx context.Context, nt *Net) (note, failed string, err error) {
	src := netip.MustParseAddrPort("127.203.0.1:7700")
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	d := &descriptor.Descriptor{Published: now, Expires: now.Add(descriptor.MaxLifetime),
		Addrs: []descriptor.Addr{{Transport: "mem", AddrPort: src}}}
	rand.Read(d.LinkKey[:])
	rand.Read(d.OnionKey[:])
	good, err := d.Sign(id)
	if err != nil {
		return "", "", err
	}
	long := *d
	long.Expires = now.Add(tenYears)
	_, signErr := long.Sign(id)

	// By hand: the good encoding with its expiry moved ten years on and
	// signed again. The same re-encoding of the unchanged body must parse,
	// or the check below would prove nothing.
	same, err := resignExpiry(good, id, time.Time{})
	if err != nil {
		return "", "", err
	}
	if _, err := descriptor.Parse(same, now); err != nil {
		return "", "", fmt.Errorf("hand re-encoding of a valid descriptor does not parse: %w", err)
	}
	tenYear, err := resignExpiry(good, id, d.Published.Add(tenYears))
	if err != nil {
		return "", "", err
	}
	_, parseErr := descriptor.Parse(tenYear, now)

	tr := nt.mem.NewTransport()
	defer tr.Close()
	disc, err := staticWith(0)
	if err != nil {
		return "", "", err
	}
	n, newErr := node.New(node.Options{Identity: id, Transport: tr, Listen: src, Discovery: disc, DescriptorLifetime: tenYears})
	if newErr == nil {
		n.Close()
	}

	// On the wire: a probe carrying it, from the address it lists.
	victim := nt.Nodes[0]
	s, err := openSock(nt, src)
	if err != nil {
		return "", "", err
	}
	var nonce [32]byte
	rand.Read(nonce[:])
	probe, err := link.EncodeProbe(nonce, tenYear)
	if err != nil {
		return "", "", err
	}
	before := victim.Stat(node.DropDescriptorLifetime)
	if err := s.send(victim.Addr(), probe); err != nil {
		return "", "", err
	}
	refused := waitStat(ctx, victim, before, 2*time.Second, node.DropDescriptorLifetime)
	_, _, answered := s.next(ctx, link.TypeProof, 0, 200*time.Millisecond, nil)
	_, admitted := victim.View().Get(id.ID())
	s.tr.Close()

	okSign := errors.Is(signErr, descriptor.ErrLifetime)
	okParse := errors.Is(parseErr, descriptor.ErrLifetime)
	okNew := errors.Is(newErr, node.ErrOptions)
	note = fmt.Sprintf("ten-year descriptor: Sign %s, Parse of a hand-encoded one %s, node.New %s, probe to an honest node %s",
		verdictErr(okSign, signErr), verdictErr(okParse, parseErr), verdictErr(okNew, newErr),
		map[bool]string{true: "refused (drop_descriptor_lifetime)", false: "not counted refused"}[refused && !answered && !admitted])
	switch {
	case !okSign:
		failed = "descriptor.Sign accepted a ten-year lifetime"
	case !okParse:
		failed = "descriptor.Parse accepted a ten-year descriptor"
	case !okNew:
		failed = "node.New accepted a ten-year DescriptorLifetime"
	case answered || admitted:
		failed = "an honest node answered or admitted a prober with a ten-year descriptor"
	}
	return note, failed, nil
}

func verdictErr(ok bool, err error) string {
	if ok {
		return "refused"
	}
	if err == nil {
		return "ACCEPTED"
	}
	return "refused for another reason (" + err.Error() + ")"
}

// resignExpiry rewrites a signed descriptor's expires field (PROTOCOL.md
// §2.2: version, then type(1) length(2) value records, the 64-byte
// signature record last) to expires (zero: unchanged) and signs the
// result again with id, as a Sybil encoding by hand would.
func resignExpiry(signed []byte, id *identity.Identity, expires time.Time) ([]byte, error) {
	const sigRecord = 3 + 64
	const typeExpires = 0x08
	if len(signed) < 1+sigRecord || signed[len(signed)-sigRecord] != 0xFF {
		return nil, errors.New("resignExpiry: no signature record last")
	}
	body := append([]byte(nil), signed[:len(signed)-sigRecord]...)
	found := false
	for i := 1; i+3 <= len(body); {
		typ, l := body[i], int(binary.BigEndian.Uint16(body[i+1:]))
		if i+3+l > len(body) {
			return nil, errors.New("resignExpiry: truncated record")
		}
		if typ == typeExpires && l == 8 {
			found = true
			if !expires.IsZero() {
				binary.BigEndian.PutUint64(body[i+3:], uint64(expires.Unix()))
			}
		}
		i += 3 + l
	}
	if !found {
		return nil, errors.New("resignExpiry: no expires record")
	}
	sig := id.Sign(append([]byte("tarzan-descriptor-v1"), body...))
	return append(append(body, 0xFF, 0, 64), sig...), nil
}
