package ipservice

// Counter names of the IP service. It counts them through Node.Count, so
// they sit in the node's counters beside the engine's (`tarzan status`,
// the control socket's JSON and scripts read them by these strings: they
// are part of the node's observable behaviour and must not change). The
// engine itself never counts them, which is why they live here and not in
// core/node.
const (
	DropIPMalformed = "drop_ip_malformed" // not a valid IP packet
	DropIPTooBig    = "drop_ip_too_big"   // IP packet larger than a relay payload
	DropIPLocal     = "drop_ip_local"     // client packet for a multicast, link-local or loopback destination
	DropExitPolicy  = "drop_exit_policy"  // destination refused by the exit policy (answered with ICMP unreachable)
	// Of drop_exit_policy: an IPv6 destination refused because of an IPv4
	// address it carries (NAT64, 6to4, Teredo, ISATAP, IPv4-compatible or
	// -translated), i.e. a client trying to reach through a translator
	// what the policy refuses directly.
	DropExitPolicyEmbedded = "drop_exit_policy_embedded"
	DropNoTunnel           = "drop_no_tunnel"  // no tunnel could be built for the packet
	DropAdapter            = "drop_adapter"    // an adapter refused a packet
	DropExitAside          = "drop_exit_aside" // client packet for a tunnel whose exit is set aside during a repair
	// A packet dropped at a tunnel's entry (client: toward the exit;
	// exit: toward the client) from the flow holding the most of a full
	// fair queue (fq.go): a flow sending more than its share.
	DropFlowQueue = "drop_flow_queue"
)

// Counters of the flow trackers that reset flows which cannot survive
// (flows.go, client.go, exit.go).
const (
	// TCP flows a client tunnel or an exit circuit stopped tracking
	// because it tracked maxTrackedFlows already (the least recently seen
	// one goes; it will not get a reset).
	FlowsEvicted = "flows_evicted"
	// Client side: TCP flows of a tunnel whose exit was lost (the tunnel
	// closed or was rebuilt on a fresh path), each answered with a RST to
	// the application.
	FlowsReset = "flows_reset"
	// Exit side: TCP flows through this exit reset because the exit
	// adapter restarted and lost their state.
	ExitFlowsReset = "exit_flows_reset"
	// Client side: tunnel builds a packet had to wait for, since no open
	// tunnel of its flow (isolation group) and no spare fit it. Spares
	// (Options.SpareTunnels) keep this at zero for new groups.
	FlowsWaitedBuild = "flows_waited_build"
	// Exit adapter restarts this node noticed (adapter.Restarter).
	ExitAdapterRestarts = "exit_adapter_restarts"
)
