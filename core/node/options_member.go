package node

import (
	"fmt"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
)

// AdmissionLimits bound what other hosts can make a node spend, and how
// long a peer that went away stays in the view. Options embeds them; zero
// values take the defaults below, negative values switch a limit off.
//
// Every limit is checked before any public-key operation: a probe costs
// its answerer a signature check and a signature, a handshake initiation
// two X25519 operations, so a limit checked after them would not bound
// the cost.
type AdmissionLimits struct {
	// ProbeRate and ProbeBurst bound the reachability probes (PROTOCOL.md
	// §5) a node answers from one source: a token bucket of ProbeBurst
	// tokens refilled at ProbeRate per second, per IPv4 address or IPv6
	// /64. Defaults 2/s and 8: an honest peer probes a node a few times
	// while it joins, then once every few minutes.
	ProbeRate  float64
	ProbeBurst int
	// ProbeGlobalRate and ProbeGlobalBurst bound the probes answered from
	// all sources together, for floods from many (spoofed) addresses.
	// Defaults 200/s and 400.
	ProbeGlobalRate  float64
	ProbeGlobalBurst int
	// HandshakeRate and HandshakeBurst bound the link handshake
	// initiations (PROTOCOL.md §4.1) a node answers from one source. A
	// source is the exact address a current mimic is known at (its own
	// budget, so that others on its host cannot starve it), or else an
	// IPv4 address or IPv6 /64. Initiations from addresses no mimic has
	// are refused before this (drop_handshake_nonmimic). Defaults 4/s and
	// 16: an honest mimic initiates at most every 250 ms (a resync).
	HandshakeRate  float64
	HandshakeBurst int
	// LimiterSources is how many sources each limiter keeps a bucket for;
	// sources beyond it share one bucket. Default 4096 (a few hundred KiB).
	LimiterSources int
	// PeerSilence evicts an admitted peer not heard from for this long:
	// no proof answering our probe and no authenticated frame on a link
	// with it. A quiet peer is probed from a third of it on, so a peer
	// that is there is not evicted; one evicted is re-admitted only by a
	// fresh proof (probed again while its descriptor is valid). Default
	// 10 min.
	PeerSilence time.Duration
}

// Admission limit defaults (AdmissionLimits).
const (
	DefaultProbeRate        = 2.0
	DefaultProbeBurst       = 8
	DefaultProbeGlobalRate  = 200.0
	DefaultProbeGlobalBurst = 400
	DefaultHandshakeRate    = 4.0
	DefaultHandshakeBurst   = 16
	DefaultLimiterSources   = 4096
	DefaultPeerSilence      = 10 * time.Minute
	// minPeerSilence keeps a misconfigured node from evicting peers
	// between two of its own maintenance rounds.
	minPeerSilence = time.Second
)

func (l *AdmissionLimits) setDefaults() {
	if l.ProbeRate == 0 {
		l.ProbeRate = DefaultProbeRate
	}
	if l.ProbeBurst == 0 {
		l.ProbeBurst = DefaultProbeBurst
	}
	if l.ProbeGlobalRate == 0 {
		l.ProbeGlobalRate = DefaultProbeGlobalRate
	}
	if l.ProbeGlobalBurst == 0 {
		l.ProbeGlobalBurst = DefaultProbeGlobalBurst
	}
	if l.HandshakeRate == 0 {
		l.HandshakeRate = DefaultHandshakeRate
	}
	if l.HandshakeBurst == 0 {
		l.HandshakeBurst = DefaultHandshakeBurst
	}
	if l.LimiterSources == 0 {
		l.LimiterSources = DefaultLimiterSources
	}
	if l.PeerSilence == 0 {
		l.PeerSilence = DefaultPeerSilence
	}
}

// validateMember checks the admission limits and that the node's own
// descriptors fit the lifetime every peer enforces.
func (o *Options) validateMember() error {
	l := &o.AdmissionLimits
	switch {
	case o.DescriptorLifetime > descriptor.MaxLifetime:
		return fmt.Errorf("%w: DescriptorLifetime %v exceeds %v: peers refuse longer-lived descriptors", ErrOptions, o.DescriptorLifetime, descriptor.MaxLifetime)
	case l.ProbeRate > 0 && l.ProbeBurst < 1, l.ProbeGlobalRate > 0 && l.ProbeGlobalBurst < 1, l.HandshakeRate > 0 && l.HandshakeBurst < 1:
		return fmt.Errorf("%w: a rate limit with a burst below 1 would refuse everything; switch it off with a negative rate", ErrOptions)
	case l.LimiterSources < 1:
		return fmt.Errorf("%w: LimiterSources %d, want >= 1", ErrOptions, l.LimiterSources)
	case l.PeerSilence > 0 && l.PeerSilence < minPeerSilence:
		return fmt.Errorf("%w: PeerSilence %v is shorter than %v", ErrOptions, l.PeerSilence, minPeerSilence)
	}
	return nil
}
