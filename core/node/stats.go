package node

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Drop and event counter names. Tests and `tarzan status` read them by
// name, so they are part of the node's observable behaviour.
const (
	DropMalformedFrame    = "drop_malformed_frame"    // wrong size or unknown frame type
	DropUnknownSession    = "drop_unknown_session"    // data frame for no session we hold
	DropFrameAuth         = "drop_frame_auth"         // AEAD tag failed
	DropFrameReplay       = "drop_frame_replay"       // replayed or too-old link frame
	DropHandshakeNonMimic = "drop_handshake_nonmimic" // link handshake from a peer that is not our mimic
	DropHandshakeInvalid  = "drop_handshake_invalid"  // handshake that failed to authenticate or was replayed
	DropDescriptorInvalid = "drop_descriptor_invalid" // forged, expired or malformed descriptor
	DropProofInvalid      = "drop_proof_invalid"      // reachability proof that did not verify or was unsolicited
	DropUnknownCircuit    = "drop_unknown_circuit"    // cell for a circuit we do not know
	DropCellTampered      = "drop_cell_tampered"      // onion tag mismatch: a hop modified the cell
	DropCellReplay        = "drop_cell_replay"        // replayed onion cell
	DropCellNotForUs      = "drop_cell_not_for_us"    // forward cell at the last hop not addressed to it
	DropExtendNonMimic    = "drop_extend_nonmimic"    // EXTEND to a node that is not our mimic: refused
	DropExtendFailed      = "drop_extend_failed"      // EXTEND that could not be carried out
	DropQueueFull         = "drop_queue_full"         // link send queue full
	DropNoExit            = "drop_data_no_exit"       // DATA at a last hop that is no exit or has no ExitHandler
	DropRelayMalformed    = "drop_relay_malformed"    // relay payload that did not decode
	DropTransportWrite    = "drop_transport_write"    // transport refused a batch
	DropGossip            = "drop_gossip"             // discovery message that could not be sent or delivered

	EventFramesIn        = "frames_in"
	EventFramesOut       = "frames_out"
	EventPaddingOut      = "padding_out"
	EventPaddingIn       = "padding_in"
	EventCellsRelayed    = "cells_relayed"
	EventCircuits        = "circuits_created"
	EventAdmitted        = "peers_admitted"
	EventLinksUp         = "links_established"
	EventTransportErrs   = "transport_errors"
	EventGossipIn        = "gossip_in"
	EventTunnelsRepaired = "tunnels_repaired"
	EventGossipOut       = "gossip_out"
)

// counters is a set of named monotonic counters.
type counters struct {
	m sync.Map // string -> *atomic.Uint64
}

func (c *counters) add(name string, n uint64) {
	v, ok := c.m.Load(name)
	if !ok {
		v, _ = c.m.LoadOrStore(name, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(n)
}

func (c *counters) inc(name string) { c.add(name, 1) }

func (c *counters) get(name string) uint64 {
	if v, ok := c.m.Load(name); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

func (c *counters) snapshot() map[string]uint64 {
	out := map[string]uint64{}
	c.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// sortedKeys is a helper for stable printing.
func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
