package loopcover

// Counter names of loop cover. It counts them through Node.Count, so they
// sit in the node's counters beside the engine's (`tarzan status`, the
// control socket's JSON and scripts read them by these strings: they must
// not change). The engine never counts them. Sent = returned + lost + in
// flight.
const (
	EventLoopsSent        = "loops_sent"         // loops sent through a loop tunnel
	EventLoopsReturned    = "loops_returned"     // loops whose reply came back within Options.Timeout
	EventLoopsLost        = "loops_lost"         // loops whose reply did not
	EventLoopAlerts       = "loop_alerts"        // times too many recent loops were lost (Options.AlertLoss)
	EventLoopTunnelsBuilt = "loop_tunnels_built" // loop tunnels built, replacements included
)
