package pluginkit

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// withTimerSlack runs start, which forks the child, on a thread whose
// timer slack is slack for the duration: the kernel gives a forked
// process its parent thread's slack and keeps it across execve, and
// every thread the child makes inherits it in turn. The thread gets its
// own slack back before it returns to the Go scheduler.
func withTimerSlack(slack time.Duration, start func() error) error {
	if slack <= 0 {
		return start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return start()
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(slack.Nanoseconds()), 0, 0, 0); err != nil {
		return start()
	}
	defer unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(old), 0, 0, 0)
	return start()
}
