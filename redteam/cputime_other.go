//go:build !unix

package redteam

import "time"

// cpuTime is 0 where getrusage does not exist: the flood attacks then
// report no CPU cost per frame.
func cpuTime() time.Duration { return 0 }
