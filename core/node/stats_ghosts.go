package node

// Counters of the circuit lifecycle (lifecycle.go, relay.go, links.go):
// restarts seen at the link handshake, unknown circuits answered, idle
// expiry and clean stops. Same conventions as stats.go.
const (
	EventPeerRestarts    = "link_peer_restarts"    // a peer's handshake said FRESH (it held no session with us): every route on that link ended at once
	EventGoneSent        = "destroy_gone_sent"     // a cell for a circuit we do not hold answered with DESTROY(GONE)
	DropGoneReplyRate    = "drop_gone_reply_rate"  // a cell for a circuit we do not hold, left unanswered: the link's answer budget was used up
	EventCircuitsExpired = "circuits_expired_idle" // relay circuit torn down idle, DESTROY(IDLE) both ways
	EventTunnelsEnded    = "tunnels_ended"         // own tunnel ended by a relay's DESTROY(IDLE) or DESTROY(FINISHED): closed, not repaired
	EventCloseDestroys   = "close_destroys_sent"   // DESTROYs sent by Node.Close on the circuits and tunnels it held
)
