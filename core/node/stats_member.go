package node

// Counters of admission, liveness and per-source limits (admit.go,
// liveness.go, limiter.go, links.go). Each refusal has its own name so an
// operator can tell a flood from a peer that is merely no mimic.
const (
	DropProbeRateLimit     = "drop_probe_ratelimit"     // probe over its source's or the global probe budget: refused before any signature work
	DropProbeReflect       = "drop_probe_reflect"       // probe whose descriptor does not list the address it came from: not answered, nothing sent anywhere
	DropHandshakeRateLimit = "drop_handshake_ratelimit" // link handshake initiation over its source's budget: refused before key agreement
	DropDescriptorLifetime = "drop_descriptor_lifetime" // descriptor valid for longer than descriptor.MaxLifetime
	DropDescriptorOlder    = "drop_descriptor_older"    // proven descriptor older than the one held for that peer (rollback)

	EventProofsSigned     = "proofs_signed"            // reachability proofs signed (one Ed25519 signature each)
	EventHandshakeDH      = "handshake_key_agreements" // link initiations that reached key agreement (Noise IK: two X25519 each)
	EventRefreshProbes    = "refresh_probes"           // probes sent to a peer not heard from for a while, or to one evicted, to see if it is there
	EventEvictedSilent    = "peers_evicted_silent"     // peers dropped from the view after PeerSilence without a proof or link traffic
	EventEvictionsSkipped = "evictions_skipped"        // liveness passes that evicted nobody because no peer at all had been heard (we were offline)
)
