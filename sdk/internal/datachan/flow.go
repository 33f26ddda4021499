package datachan

import (
	"encoding/binary"
	"os"
	"os/exec"
	"slices"
)

// Slots of an adapter's channel carry a flow (adapter.Packet.Flow) where
// a transport's carry an address: len uint16, 2 bytes of zero, flow
// uint64, zero padding to 32 bytes; little-endian like the address form.

// PutFlowHeader writes the header of a slot holding one IP packet of n
// bytes on flow.
func PutFlowHeader(s []byte, flow uint64, n int) {
	binary.LittleEndian.PutUint16(s[0:], uint16(n))
	binary.LittleEndian.PutUint16(s[2:], 0)
	binary.LittleEndian.PutUint64(s[4:], flow)
}

// PutFlow writes one packet into the i-th free slot. len(data) ≤ SlotPayload.
func (p *Producer) PutFlow(i int, flow uint64, data []byte) {
	s := p.Slot(i)
	PutFlowHeader(s, flow, len(data))
	copy(s[slotHeader:], data)
}

// FlowPacket decodes a slot read from shared memory, with the same checks
// as Datagram: the length is read once and bounded, so a peer rewriting
// the slot meanwhile can change the bytes returned but never their
// bounds. data aliases the slot.
func FlowPacket(s []byte) (flow uint64, data []byte, err error) {
	if len(s) < slotHeader {
		return 0, nil, errBadLen
	}
	n := int(binary.LittleEndian.Uint16(s[0:]))
	if n > SlotPayload || n > len(s)-slotHeader {
		return 0, nil, errBadLen
	}
	return binary.LittleEndian.Uint64(s[4:]), s[slotHeader : slotHeader+n : slotHeader+n], nil
}

// ShmWanted reports whether a host should offer an adapter child shared
// memory: the platform has it and the environment asks for it
// (EnvMode=shm). The socket framing is every kind's default (D59; D60's
// merge note: populated rings still cost a tunnel build and a first byte
// more than the sockets, end to end).
func ShmWanted() bool { return ShmSupported && os.Getenv(EnvMode) == "shm" }

// Offer makes shared memory for the child cmd will start, if ShmWanted,
// and adds its descriptors and variable to cmd (after the data socket,
// which must already be in ExtraFiles). It returns nil when shared memory
// is not wanted or cannot be made: the socket framing works without it.
func Offer(cmd *exec.Cmd) *ShmSetup { return offer(cmd, ShmWanted()) }

func offer(cmd *exec.Cmd, wanted bool) *ShmSetup {
	if !wanted {
		return nil
	}
	m, err := NewShm(DefaultSlots)
	if err != nil {
		return nil
	}
	cmd.Env = append(cmd.Env, m.Env(childFD+len(cmd.ExtraFiles)))
	cmd.ExtraFiles = append(cmd.ExtraFiles, m.Files()...)
	return m
}

// Accepted reports whether a child's Configure answer carried the header
// ShmHeader with ShmValue (values: the header's values, as gRPC's
// metadata.MD.Get returns them).
func Accepted(values []string) bool { return slices.Contains(values, ShmValue) }
