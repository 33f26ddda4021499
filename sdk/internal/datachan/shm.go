package datachan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
)

// Shared-memory data channel (Linux; see shm_linux.go for the set-up).
//
// One memfd holds both directions. Layout (little-endian):
//
//	0      magic "TZSHM01\x00", slots per ring uint32, slot size uint32
//	4096   ring host → child: control block (256 bytes), then the slots
//	4096 + ringBytes (page-rounded): ring child → host, same layout
//
// The host creates, sizes and seals it (no shrinking or growing: a child
// cannot make the host's reads fault), and passes it with a second socket
// pair to the child at exec. The data socket of the plain channel stays
// as the child → host ring's doorbell; the second pair is the host →
// child ring's. The child announces in its Configure answer that it
// mapped the memory; a child that does not (an older plugin binary)
// keeps the socket framing, and so does the host.

// EnvShm names the variable listing the child's shared-memory descriptors
// ("memfd,bell").
const EnvShm = "TARZAN_PLUGIN_SHM_FDS"

// EnvMode, set to "socket" in the host's environment, keeps the socket
// framing (for A/B measurements and as an escape hatch).
const EnvMode = "TARZAN_DATACHAN"

// ShmHeader is the gRPC metadata key and value with which a child says it
// uses the shared memory.
const (
	ShmHeader = "tarzan-datachan"
	ShmValue  = "shm1"
)

// DefaultSlots is the slots per ring: 1,024 × 2 KiB = 2 MiB per direction,
// the window the transport bench keeps in flight.
const DefaultSlots = 1024

const (
	magic    = "TZSHM01\x00"
	pageSize = 4096
)

func ringBytes(slots int) int {
	n := ctlSize + slots*SlotSize
	return (n + pageSize - 1) &^ (pageSize - 1)
}

func shmSize(slots int) int { return pageSize + 2*ringBytes(slots) }

func putLayout(mem []byte, slots int) {
	copy(mem, magic)
	binary.LittleEndian.PutUint32(mem[8:], uint32(slots))
	binary.LittleEndian.PutUint32(mem[12:], SlotSize)
}

// checkLayout validates what the child finds in the memory it was given.
func checkLayout(mem []byte) (slots int, err error) {
	if len(mem) < pageSize || string(mem[:8]) != magic {
		return 0, errors.New("datachan: shared memory has no valid header")
	}
	slots = int(binary.LittleEndian.Uint32(mem[8:]))
	if slots <= 0 || slots&(slots-1) != 0 || slots > 1<<16 ||
		binary.LittleEndian.Uint32(mem[12:]) != SlotSize || len(mem) != shmSize(slots) {
		return 0, fmt.Errorf("datachan: shared memory layout (%d slots, %d bytes) not understood", slots, len(mem))
	}
	return slots, nil
}

// rings returns the host → child and child → host rings of mem.
func rings(mem []byte, slots int) (toChild, toHost *ring) {
	rb := ringBytes(slots)
	return newRing(mem[pageSize:pageSize+rb], uint64(slots)), newRing(mem[pageSize+rb:pageSize+2*rb], uint64(slots))
}

// ErrChanClosed is returned by a Shared after Close, or when the other
// side's doorbell socket ended (it died).
var ErrChanClosed = errors.New("datachan: channel closed")

// Shared is one side's end of a shared-memory channel: it produces into
// one ring and consumes from the other. One goroutine may receive while
// another sends; Close may be called at any time, unblocks both and
// unmaps the memory once they have returned.
type Shared struct {
	mu      sync.RWMutex // held shared by Recv/Send users, exclusively by Close
	closed  bool
	mem     []byte
	unmap   func([]byte) error
	in      Consumer
	out     Producer
	inBell  *net.UnixConn // the peer rings it when in has data; we ring it when we freed in's slots
	outBell *net.UnixConn // we ring it when out has data; the peer rings it when it freed out's slots
	once    sync.Once
	buf     [2][64]byte
}

// Close ends the channel: the sockets first, so blocked callers return,
// then the memory once they have.
func (s *Shared) Close() error {
	s.once.Do(func() {
		s.inBell.Close()
		s.outBell.Close()
		s.mu.Lock()
		s.closed = true
		if s.unmap != nil {
			_ = s.unmap(s.mem)
		}
		s.mem = nil
		s.mu.Unlock()
	})
	return nil
}

// Bell is the socket whose end marks the peer's death (reads return EOF):
// the plain channel's socket, which the slot tracks.
func (s *Shared) Bell() *net.UnixConn { return s.inBell }

// Recv calls fn with the consumer side once at least one slot is filled
// (blocking until then), and releases the number of slots fn returns.
// It fails with ErrChanClosed or ErrCorrupt.
func (s *Shared) Recv(fn func(c *Consumer, avail int) (used int)) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrChanClosed
	}
	for {
		n, err := s.in.Avail()
		if err != nil {
			return err
		}
		if n == 0 {
			sleep, err := s.in.Sleep()
			if err != nil {
				return err
			}
			if sleep {
				if _, err := s.inBell.Read(s.buf[0][:]); err != nil {
					return ErrChanClosed
				}
			}
			continue
		}
		used := fn(&s.in, n)
		if used > n {
			used = n
		}
		if s.in.Release(used) {
			ringBell(s.inBell)
		}
		return nil
	}
}

// Send calls fn with the producer side once at least one slot is free
// (blocking until then: back-pressure), and publishes the number of slots
// fn returns.
func (s *Shared) Send(fn func(p *Producer, free int) (filled int)) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrChanClosed
	}
	for {
		n, err := s.out.Free()
		if err != nil {
			return err
		}
		if n == 0 {
			sleep, err := s.out.Sleep()
			if err != nil {
				return err
			}
			if sleep {
				if _, err := s.outBell.Read(s.buf[1][:]); err != nil {
					return ErrChanClosed
				}
			}
			continue
		}
		k := fn(&s.out, n)
		if k > n {
			k = n
		}
		if k > 0 && s.out.Publish(k) {
			ringBell(s.outBell)
		}
		return nil
	}
}

// ShmSetup is what the host made for one child before starting it.
type ShmSetup struct {
	mem        []byte
	slots      int
	memfd      *os.File
	bellHost   *net.UnixConn
	bellChild  *os.File
	childFirst int // descriptor number of memfd in the child
}

// Files are the descriptors to append to exec.Cmd.ExtraFiles (after the
// data socket), and Env the variable naming them in the child.
func (m *ShmSetup) Files() []*os.File { return []*os.File{m.memfd, m.bellChild} }

// Env is the environment entry naming the child's descriptors; first is
// the child descriptor number of Files()[0] (3 + its ExtraFiles index).
func (m *ShmSetup) Env(first int) string {
	return fmt.Sprintf("%s=%d,%d", EnvShm, first, first+1)
}

// Started closes the host's copies of the child's descriptors.
func (m *ShmSetup) Started() {
	m.memfd.Close()
	m.bellChild.Close()
}

// Abandon releases everything (the child did not take the offer, or it
// did not start).
func (m *ShmSetup) Abandon() {
	m.Started()
	m.bellHost.Close()
	_ = unmapMem(m.mem)
}

// Host turns the setup into the host's end, with data, the plain
// channel's host socket, as the child → host doorbell.
func (m *ShmSetup) Host(data *net.UnixConn) *Shared {
	toChild, toHost := rings(m.mem, m.slots)
	return &Shared{
		mem: m.mem, unmap: unmapMem,
		out: Producer{r: toChild}, in: Consumer{r: toHost},
		outBell: m.bellHost, inBell: data,
	}
}

// PokeHeadForTest stores v as the producer index of the ring this side
// writes, as a hostile peer could: for tests of the other side's checks.
func (s *Shared) PokeHeadForTest(v uint64) { s.out.r.head.Store(v) }

// RingForTest rings the peer's doorbell of the ring this side consumes
// and of the one it produces, for tests of a hostile peer.
func RingForTest(s *Shared) {
	ringBell(s.inBell)
	ringBell(s.outBell)
}
