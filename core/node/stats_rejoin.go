package node

// Counters of keep-exit repair (rejoin.go). Same conventions as stats.go.
const (
	EventTunnelsRejoined  = "tunnels_rejoined"        // keep-exit repair: the exit rejoined through new hops, its circuit and flows kept (also counted in tunnels_repaired)
	EventRejoinFallback   = "tunnels_rejoin_fallback" // keep-exit repair impossible (exit lost, cap, no walk) or failed: v2 repair to a new exit
	EventCircuitsRejoined = "circuits_rejoined"       // exit side: a last-hop circuit moved to a new previous hop
	EventCircuitsOrphaned = "circuits_orphaned"       // exit side: a last-hop circuit lost its previous hop and waits for a rejoin
	EventOrphansExpired   = "circuits_orphan_expired" // an orphan not rejoined within Options.OrphanGrace: torn down
	DropOrphanReply       = "drop_orphan_reply"       // backward cell (an exit reply) for an orphan: no previous hop to send it to
)
