package pluginkit

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// processExit returns a channel closed when process pid ends (exits or is
// killed; it need not have been reaped), and a function that releases the
// watch. It uses a pidfd in the runtime's poller, so waiting costs no
// thread and no wake-up. ok is false where pidfds are not available
// (Linux before 5.3, or a seccomp filter that refuses pidfd_open): the
// caller then polls.
func processExit(pid int) (exited <-chan struct{}, release func(), ok bool) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, nil, false
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	// Only a file in the poller takes deadlines: this one must be, or
	// the wait below would fail at once.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, nil, false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, false
	}
	ch := make(chan struct{})
	go func() {
		// A pidfd becomes readable when its process ends. The first call
		// asks the poller to wait for that; the second says it came.
		// Closing f (release) ends the wait with an error.
		waited := false
		err := rc.Read(func(uintptr) bool {
			done := waited
			waited = true
			return done
		})
		if err == nil {
			close(ch)
		}
	}()
	return ch, func() { f.Close() }, true
}
