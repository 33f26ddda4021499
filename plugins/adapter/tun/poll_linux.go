package tun

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// readyPoller says, without blocking, whether the TUN device has a packet
// waiting: poll(2) with a zero timeout on its descriptor. ReadPackets
// uses it to add what the kernel already queued to a batch instead of
// handing the batch on and coming back for it a moment later.
type readyPoller struct {
	rc  syscall.RawConn
	fds [1]unix.PollFd
	ok  bool
	fn  func(fd uintptr) // p.poll, bound once: no allocation per call
}

func newReadyPoller(rc syscall.RawConn) *readyPoller {
	p := &readyPoller{rc: rc}
	p.fds[0].Events = unix.POLLIN
	p.fn = p.poll
	return p
}

// ready reports whether a read(2) would return at once. Only the read
// side calls it (under rmu).
func (p *readyPoller) ready() bool {
	if p == nil || p.rc == nil {
		return false
	}
	p.ok = false
	// Control holds a reference to the descriptor for the call, so a
	// concurrent Close cannot hand its number to another file meanwhile.
	p.rc.Control(p.fn)
	return p.ok
}

func (p *readyPoller) poll(fd uintptr) {
	p.fds[0].Fd, p.fds[0].Revents = int32(fd), 0
	n, err := unix.Poll(p.fds[:], 0)
	p.ok = err == nil && n > 0 && p.fds[0].Revents&unix.POLLIN != 0
}
