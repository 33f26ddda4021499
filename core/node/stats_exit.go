package node

// Exit-policy counters (core/ipservice/exit.go counts them, Node.Count).
const (
	// Of drop_exit_policy: an IPv6 destination refused because of an IPv4
	// address it carries (NAT64, 6to4, Teredo, ISATAP, IPv4-compatible or
	// -translated), i.e. a client trying to reach through a translator
	// what the policy refuses directly.
	DropExitPolicyEmbedded = "drop_exit_policy_embedded"
)
