package node

// Counters of the flow trackers that reset flows which cannot survive
// (core/ipservice: flows.go, client.go, exit.go; counted through Node.Count).
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
	// Exit adapter restarts this node noticed (adapter.Restarter).
	ExitAdapterRestarts = "exit_adapter_restarts"
)
