package transportplugin

import (
	"net"
	"sync"
)

// dataSlot holds the current child's data channel. It is empty between a
// child's death and the end of its replacement's replay; readers wait on
// ready for it to be filled again.
type dataSlot struct {
	mu    sync.Mutex
	conn  *net.UnixConn
	ready chan struct{} // closed while conn != nil
}

func (d *dataSlot) init() { d.ready = make(chan struct{}) }

func (d *dataSlot) set(c *net.UnixConn) {
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

func (d *dataSlot) get() *net.UnixConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn
}

// wait returns the current channel and a channel closed once there is one.
func (d *dataSlot) wait() (*net.UnixConn, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn, d.ready
}

// drop empties the slot if it still holds c (a reader saw c end before
// the supervisor noticed the death). clear empties it unconditionally.
func (d *dataSlot) drop(c *net.UnixConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == c {
		d.emptyLocked()
	}
}

func (d *dataSlot) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.emptyLocked()
}

func (d *dataSlot) emptyLocked() {
	if d.conn == nil {
		return
	}
	d.conn.Close()
	d.conn = nil
	d.ready = make(chan struct{})
}
