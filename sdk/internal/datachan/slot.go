package datachan

import (
	"net"
	"sync"
)

// Slot holds the current child's data channel. It is empty between a
// child's death and the end of its replacement's replay; readers wait on
// ready for it to be filled again.
type Slot struct {
	mu    sync.Mutex
	conn  *net.UnixConn
	ready chan struct{} // closed while conn != nil
}

// NewSlot returns an empty slot.
func NewSlot() *Slot { return &Slot{ready: make(chan struct{})} }

// Set publishes c (a new child is ready) and wakes waiting readers.
func (d *Slot) Set(c *net.UnixConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil { // ready is already closed
		d.conn.Close()
		d.conn = c
		return
	}
	d.conn = c
	close(d.ready)
}

// Get returns the current channel or nil.
func (d *Slot) Get() *net.UnixConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn
}

// Wait returns the current channel and a channel closed once there is one.
func (d *Slot) Wait() (*net.UnixConn, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn, d.ready
}

// Drop empties the slot if it still holds c (a reader saw c end before
// the supervisor noticed the death). Clear empties it unconditionally.
func (d *Slot) Drop(c *net.UnixConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == c {
		d.emptyLocked()
	}
}

func (d *Slot) Clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.emptyLocked()
}

func (d *Slot) emptyLocked() {
	if d.conn == nil {
		return
	}
	d.conn.Close()
	d.conn = nil
	d.ready = make(chan struct{})
}
