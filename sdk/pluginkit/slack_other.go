//go:build !linux

package pluginkit

import "time"

// withTimerSlack: timer slack is Linux's; elsewhere the child starts as is.
func withTimerSlack(_ time.Duration, start func() error) error { return start() }
