package pnat

import "sync/atomic"

// stats are the counters Stats reports. Gauges (tunnels, mappings,
// flows_open) are computed by Stats itself.
type stats struct {
	packetsIn, packetsOut      atomic.Uint64
	flowsOpened                atomic.Uint64 // flows ever opened
	dialed, dialFailed         atomic.Uint64 // outbound sockets opened / failed
	rejectedPolicy             atomic.Uint64 // packets the exit policy refused
	rejectedLocal              atomic.Uint64 // packets for the exit host itself (loopback guard)
	rejectedLimit              atomic.Uint64 // new flows over max_flows_per_tunnel
	dropMalformed              atomic.Uint64 // unparsable packets
	dropChecksum               atomic.Uint64 // packets with a bad checksum (the stack trusts the link's check)
	dropUnsupported            atomic.Uint64 // protocols or ICMP types pnat does not serve
	dropNoMapping              atomic.Uint64 // stack output for an unknown internal address
	dropQueueFull              atomic.Uint64 // replies lost because ReadPackets lagged
	dropTooBig                 atomic.Uint64 // replies larger than the caller's buffer
	poolExhausted              atomic.Uint64 // no internal address left
	icmpEchoes, icmpUnavailble atomic.Uint64 // echoes sent / dropped for lack of ping sockets
	dnsQueries, dnsFailures    atomic.Uint64 // queries answered / answered with an error
	idleClosed                 atomic.Uint64 // flows closed by the idle timers
}

func (s *stats) snapshot() map[string]uint64 {
	return map[string]uint64{
		"packets_in":       s.packetsIn.Load(),
		"packets_out":      s.packetsOut.Load(),
		"flows_opened":     s.flowsOpened.Load(),
		"dialed":           s.dialed.Load(),
		"dial_failed":      s.dialFailed.Load(),
		"rejected_policy":  s.rejectedPolicy.Load(),
		"rejected_local":   s.rejectedLocal.Load(),
		"rejected_limit":   s.rejectedLimit.Load(),
		"drop_malformed":   s.dropMalformed.Load(),
		"drop_checksum":    s.dropChecksum.Load(),
		"drop_unsupported": s.dropUnsupported.Load(),
		"drop_no_mapping":  s.dropNoMapping.Load(),
		"drop_queue_full":  s.dropQueueFull.Load(),
		"drop_too_big":     s.dropTooBig.Load(),
		"pool_exhausted":   s.poolExhausted.Load(),
		"icmp_echoes":      s.icmpEchoes.Load(),
		"icmp_unavailable": s.icmpUnavailble.Load(),
		"dns_queries":      s.dnsQueries.Load(),
		"dns_failures":     s.dnsFailures.Load(),
		"idle_closed":      s.idleClosed.Load(),
	}
}
