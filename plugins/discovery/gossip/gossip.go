package gossip

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// Name is the backend's registered name.
const Name = "gossip"

// Gossip is the epidemic membership backend; see the package doc.
type Gossip struct {
	opts   options
	now    func() time.Time
	parse  ParseFunc
	manual bool // tests drive Round themselves

	mu       sync.Mutex
	rng      *rand.Rand // picks targets, pages and windows
	nonces   *rand.Rand // nonces only: ChaCha8 seeded from crypto/rand
	self     *entry
	selfAddr map[netip.AddrPort]bool
	view     map[identity.ID]*entry     // admitted by the core, gossiped onward
	viewList []*entry                   // view's entries, for picking at random
	viewPos  map[identity.ID]int        // index in viewList
	addrRefs map[netip.AddrPort]int     // how many view entries advertise each address
	cands    map[identity.ID]*candidate // learned, proposed, not (yet) admitted
	issued   map[netip.AddrPort][]issued
	asked    map[prefix]uint64 // round an ID was last requested in
	round    uint64
	rounds   atomic.Uint64 // round, readable without the lock
	budget   int           // bytes left to send this round
	// nextExpire is no later than the first time a view entry or a
	// candidate expires (zero: nothing to expire).
	nextExpire time.Time
	// nextRefresh is no later than the first time a view entry is due
	// for a refresh probe (zero: the view is empty).
	nextRefresh time.Time

	// news counts changes to what this node knows (changedLocked);
	// newsWake (capacity 1) tells run of one while it sleeps a stretched
	// round.
	news     uint64
	newsWake chan struct{}

	outbox   []discovery.Message
	outBytes int
	outWake  chan struct{}
	props    []discovery.Proposal
	propWake chan struct{}

	started bool
	closed  bool
	done    chan struct{}
	stats   map[string]uint64

	// What the digest and the summaries are made of, kept up to date by
	// changedLocked (round.go).
	vsum          [numBuckets]uint32 // XOR of the view's entry sums
	vcount        [numBuckets]int    // view entries per bucket
	kb            [numBuckets]map[prefix]known
	kbList        [numBuckets][]summaryEntry
	kbListOK      [numBuckets]bool
	selfKnownLive bool     // whether kb holds our own entry
	digest        *message // nil: recompute
}

// entry is a descriptor this node gossips: its own or one its core
// admitted.
type entry struct {
	id        identity.ID
	raw       []byte
	published uint32
	expires   time.Time
	lifetime  time.Duration
	addrs     []descriptor.Addr
	sum       uint32    // entrySum(id, published), computed once
	refreshed time.Time // last time a refresh probe was proposed
}

// candidate is a descriptor learned from another node and proposed to the
// core; it is not gossiped until the core admits it.
type candidate struct {
	desc      *descriptor.Descriptor // verified when learned
	published uint32
	expires   time.Time
	proposed  time.Time
}

// issued is a nonce this node sent to an address, and the nonce that
// address had sent it (to echo in replies to it).
type issued struct {
	mine, theirs uint64
	round        uint64
}

var (
	_ discovery.Discovery = (*Gossip)(nil)
	_ discovery.Messenger = (*Gossip)(nil)
)

// New creates the backend from its options; it is a discovery.Factory.
func New(options map[string]string) (discovery.Discovery, error) {
	return NewWithParser(options, descriptor.Parse)
}

// ParseFunc verifies and parses a descriptor; descriptor.Parse is the
// one real nodes use.
type ParseFunc func(b []byte, now time.Time) (*descriptor.Descriptor, error)

// NewWithParser is New with another descriptor parser: the simulator
// passes one that verifies each distinct descriptor once for all the
// nodes it runs in one process and shares the parsed (immutable) result,
// where real nodes each verify and hold their own copy. parse must check
// everything descriptor.Parse checks.
func NewWithParser(options map[string]string, parse ParseFunc) (discovery.Discovery, error) {
	o, err := parseOptions(options)
	if err != nil {
		return nil, err
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("gossip discovery: seeding: %w", err)
	}
	g := newGossip(o, time.Now, rand.NewChaCha8(seed), false)
	g.parse = parse
	return g, nil
}

// newGossip makes a backend whose choices come from src (tests pass a
// seeded one to replay a run). Nonces never do: every answer must echo
// one, so whoever could predict them could forge answers from any
// address, and a statistical generator (a PCG) is predictable from its
// state. They come from a ChaCha8 of their own, seeded from crypto/rand
// (whose Read never fails: it crashes the program instead) and never used
// for anything else.
func newGossip(o options, now func() time.Time, src rand.Source, manual bool) *Gossip {
	var seed [32]byte
	crand.Read(seed[:])
	return &Gossip{
		opts:     o,
		now:      now,
		parse:    descriptor.Parse,
		manual:   manual,
		rng:      rand.New(src),
		nonces:   rand.New(rand.NewChaCha8(seed)),
		view:     map[identity.ID]*entry{},
		viewPos:  map[identity.ID]int{},
		addrRefs: map[netip.AddrPort]int{},
		cands:    map[identity.ID]*candidate{},
		issued:   map[netip.AddrPort][]issued{},
		asked:    map[prefix]uint64{},
		outWake:  make(chan struct{}),
		newsWake: make(chan struct{}, 1),
		propWake: make(chan struct{}),
		done:     make(chan struct{}),
		stats:    map[string]uint64{},
	}
}

// Name returns "gossip".
func (g *Gossip) Name() string { return Name }

// Start sets this node's descriptor and starts the rounds. Called again
// (a restarted plugin host replays it), a newer descriptor replaces the
// old one.
func (g *Gossip) Start(self []byte) error {
	d, err := g.parse(self, g.now())
	if err != nil {
		return fmt.Errorf("gossip discovery: own descriptor: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return discovery.ErrClosed
	}
	g.setSelfLocked(d)
	if g.started {
		return nil
	}
	g.started = true
	if !g.manual {
		go g.run()
	}
	return nil
}

func (g *Gossip) setSelfLocked(d *descriptor.Descriptor) {
	if g.self != nil && wireTime(d.Published.Unix()) <= g.self.published {
		return
	}
	old := g.self
	g.self = newEntry(d)
	if old != nil && old.id != g.self.id {
		g.changedLocked(old.id)
	}
	g.selfKnownLive = g.live(g.now(), g.self.expires)
	g.changedLocked(g.self.id)
	g.selfAddr = map[netip.AddrPort]bool{}
	for _, a := range d.Addrs {
		g.selfAddr[a.AddrPort] = true
	}
}

func newEntry(d *descriptor.Descriptor) *entry {
	id, pub := d.ID(), wireTime(d.Published.Unix())
	return &entry{
		id:        id,
		raw:       d.Encoded(),
		published: pub,
		expires:   d.Expires,
		lifetime:  d.Expires.Sub(d.Published),
		addrs:     d.Addrs,
		sum:       entrySum(id, pub),
	}
}

// maxStretch bounds how far quiet rounds stretch: at most this many
// intervals apart.
const maxStretch = 32

// run calls Round every interval while there is news, and stretches the
// wait between rounds while there is none. A round after which this node
// knows nothing it did not know before is quiet; each quiet round doubles
// the wait, up to maxStretch intervals, and any change (a descriptor
// learned, admitted, expired, a candidate proposed or forgotten, our own
// descriptor renewed) brings the next round back to one interval after
// the last. News spreads as fast as before, because the nodes that
// learned something gossip at the full rate; two nodes with the same view
// exchange only matching DIGESTs, and a converged network of idle nodes
// now does that rarely instead of every interval. A node that knows no
// peer yet (its bootstrap may not be up) never stretches. Expiry and
// refresh keep their times: a round runs when the first is due.
func (g *Gossip) run() {
	base := g.opts.interval
	wait := base
	var seen uint64
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		last := time.Now()
		g.Round()
		g.mu.Lock()
		news, due, alone := g.news, g.nextDueLocked(), len(g.view) == 0
		g.mu.Unlock()
		if news != seen || wait == 0 || alone {
			wait = base
		} else {
			wait = min(2*wait, maxStretch*base)
		}
		seen = news
		d := wait
		if !due.IsZero() {
			d = min(d, max(time.Until(due), base))
		}
		timer.Reset(d)
	sleep:
		select {
		case <-g.done:
			return
		case <-timer.C:
		case <-g.newsWake:
			g.mu.Lock()
			news = g.news
			g.mu.Unlock()
			if news == seen || d <= base {
				goto sleep
			}
			// News while a stretched round sleeps: the next round one
			// interval after the last, as if none had been quiet.
			wait = 0
			timer.Reset(max(time.Until(last.Add(base)), 0))
			d = base
			goto sleep
		}
	}
}

// nextDueLocked is when the round loop must next run for expiry or
// refresh (zero: nothing is due).
func (g *Gossip) nextDueLocked() time.Time {
	due := g.nextExpire
	if r := g.nextRefresh; !r.IsZero() && (due.IsZero() || r.Before(due)) {
		due = r
	}
	return due
}

// Next returns the descriptors learned from other nodes (and refresh
// probes) since the last call, blocking until there are some.
func (g *Gossip) Next(ctx context.Context) ([]discovery.Proposal, error) {
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return nil, discovery.ErrClosed
		}
		if len(g.props) > 0 {
			out := g.props
			g.props = nil
			g.mu.Unlock()
			return out, nil
		}
		wake := g.propWake
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// Admitted adds descriptors the core admitted to what this node gossips.
func (g *Gossip) Admitted(descriptors [][]byte) error {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, raw := range descriptors {
		d, err := g.admittedDescriptor(raw, now)
		if err != nil {
			g.stats["admitted_invalid"]++
			continue
		}
		e := newEntry(d)
		if e.id == g.selfID() {
			continue
		}
		if old := g.view[e.id]; old != nil && old.published > e.published {
			continue
		}
		g.putViewLocked(e)
		g.stats["admitted"]++
		if c := g.cands[e.id]; c != nil && c.published <= e.published {
			delete(g.cands, e.id)
			g.changedLocked(e.id)
		}
	}
	return nil
}

// putViewLocked adds or replaces an entry of the view.
func (g *Gossip) putViewLocked(e *entry) {
	b := bucketOf(e.id)
	if old := g.view[e.id]; old != nil {
		g.addrRefsLocked(old, -1)
		g.vsum[b] ^= old.sum
		g.vcount[b]--
		g.viewList[g.viewPos[e.id]] = e
	} else {
		g.viewPos[e.id] = len(g.viewList)
		g.viewList = append(g.viewList, e)
	}
	g.view[e.id] = e
	g.vsum[b] ^= e.sum
	g.vcount[b]++
	g.expiresAtLocked(e.expires.Add(g.opts.expiry))
	if at := refreshAt(e); g.nextRefresh.IsZero() || at.Before(g.nextRefresh) {
		g.nextRefresh = at
	}
	g.addrRefsLocked(e, 1)
	g.changedLocked(e.id)
}

// delViewLocked removes an entry from the view.
func (g *Gossip) delViewLocked(id identity.ID) {
	old := g.view[id]
	if old == nil {
		return
	}
	g.addrRefsLocked(old, -1)
	g.vsum[bucketOf(id)] ^= old.sum
	g.vcount[bucketOf(id)]--
	i, last := g.viewPos[id], len(g.viewList)-1
	g.viewList[i] = g.viewList[last]
	g.viewPos[g.viewList[i].id] = i
	g.viewList[last] = nil
	g.viewList = g.viewList[:last]
	delete(g.viewPos, id)
	delete(g.view, id)
	g.changedLocked(id)
}

func (g *Gossip) addrRefsLocked(e *entry, d int) {
	for _, a := range e.addrs {
		if g.addrRefs[a.AddrPort] += d; g.addrRefs[a.AddrPort] <= 0 {
			delete(g.addrRefs, a.AddrPort)
		}
	}
}

// admittedDescriptor parses an admitted descriptor, reusing the candidate
// we verified ourselves when the core admitted exactly that.
func (g *Gossip) admittedDescriptor(raw []byte, now time.Time) (*descriptor.Descriptor, error) {
	if id, _, ok := peek(raw); ok {
		if c := g.cands[id]; c != nil && bytes.Equal(c.desc.Encoded(), raw) {
			return c.desc, nil
		}
	}
	return g.parse(raw, now)
}

// Outbox returns the messages queued for other nodes, blocking until
// there are some.
func (g *Gossip) Outbox(ctx context.Context) ([]discovery.Message, error) {
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return nil, discovery.ErrClosed
		}
		if len(g.outbox) > 0 {
			out := g.outbox
			g.outbox, g.outBytes = nil, 0
			g.mu.Unlock()
			return out, nil
		}
		wake := g.outWake
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// Close stops the rounds and unblocks Next and Outbox.
func (g *Gossip) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		close(g.done)
		wakeUp(&g.outWake)
		wakeUp(&g.propWake)
	}
	return nil
}

// Rounds returns how many rounds have run, without taking the lock (a
// simulator polls thousands of backends).
func (g *Gossip) Rounds() uint64 { return g.rounds.Load() }

// Stats returns a snapshot of the counters (see the package doc).
func (g *Gossip) Stats() map[string]uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]uint64, len(g.stats)+3)
	for k, v := range g.stats {
		out[k] = v
	}
	out["view"] = uint64(len(g.view))
	out["candidates"] = uint64(len(g.cands))
	out["round"] = g.round
	return out
}

func wakeUp(c *chan struct{}) {
	close(*c)
	*c = make(chan struct{})
}

func (g *Gossip) selfID() identity.ID {
	if g.self == nil {
		return identity.ID{}
	}
	return g.self.id
}

// errNotStarted is returned by Deliver before Start.
var errNotStarted = errors.New("gossip discovery: not started")

// Deliver handles messages from other nodes. Malformed, unsolicited and
// invalid ones are counted and dropped; Deliver returns an error only
// when the backend cannot take messages at all.
func (g *Gossip) Deliver(msgs []discovery.Message) error {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return discovery.ErrClosed
	case g.self == nil:
		return errNotStarted
	}
	for _, msg := range msgs {
		g.stats["msgs_in"]++
		g.stats["bytes_in"] += uint64(len(msg.Data))
		m, err := decode(msg.Data)
		if err != nil {
			g.stats["drop_malformed"]++
			continue
		}
		g.handleLocked(now, msg, m)
	}
	return nil
}

// queueLocked encodes m for addr and charges it to the round's budget.
func (g *Gossip) queueLocked(to netip.AddrPort, transport string, m *message) bool {
	b, err := m.encode()
	if err != nil {
		g.stats["drop_encode"]++
		return false
	}
	if len(b) > g.budget {
		g.stats["drop_budget"]++
		return false
	}
	// A host that stops draining Outbox must not make us hoard.
	if g.outBytes+len(b) > 4*g.opts.maxBytes {
		g.stats["drop_outbox_full"]++
		return false
	}
	g.budget -= len(b)
	g.outBytes += len(b)
	g.outbox = append(g.outbox, discovery.Message{Addr: to, Transport: transport, Data: b})
	g.stats["msgs_out"]++
	g.stats["bytes_out"] += uint64(len(b))
	g.stats[msgStat[m.typ]]++
	wakeUp(&g.outWake)
	return true
}

var msgStat = map[byte]string{typeDigest: "out_digest", typeSummary: "out_summary", typeRequest: "out_request", typeDescs: "out_descs"}

func (g *Gossip) proposeLocked(p discovery.Proposal) {
	p.Descriptor = slices.Clone(p.Descriptor)
	g.props = append(g.props, p)
	wakeUp(&g.propWake)
}
