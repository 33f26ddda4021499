package datachan

import "sync"

// Conn is what a Slot holds: a plain channel (*net.UnixConn) or a kind
// package's wrapper around one.
type Conn interface {
	comparable
	Close() error
}

// Slot holds the current child's data channel. It is empty between a
// child's death and the end of its replacement's replay; readers wait on
// ready for it to be filled again.
type Slot[T Conn] struct {
	mu    sync.Mutex
	conn  T
	set   bool
	ready chan struct{} // closed while conn != nil
}

// NewSlot returns an empty slot.
func NewSlot[T Conn]() *Slot[T] { return &Slot[T]{ready: make(chan struct{})} }

// Set publishes c (a new child is ready) and wakes waiting readers.
func (d *Slot[T]) Set(c T) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.set { // ready is already closed
		d.conn.Close()
		d.conn = c
		return
	}
	d.conn, d.set = c, true
	close(d.ready)
}

// Get returns the current channel or the zero T (nil).
func (d *Slot[T]) Get() T {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn
}

// Wait returns the current channel and a channel closed once there is one.
func (d *Slot[T]) Wait() (T, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn, d.ready
}

// Drop empties the slot if it still holds c (a reader saw c end before
// the supervisor noticed the death). Clear empties it unconditionally.
func (d *Slot[T]) Drop(c T) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.set && d.conn == c {
		d.emptyLocked()
	}
}

func (d *Slot[T]) Clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.emptyLocked()
}

func (d *Slot[T]) emptyLocked() {
	if !d.set {
		return
	}
	d.conn.Close()
	var zero T
	d.conn, d.set = zero, false
	d.ready = make(chan struct{})
}
