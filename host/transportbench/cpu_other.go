//go:build !unix

package transportbench

import "time"

// selfCPU is 0 where getrusage does not exist.
func selfCPU() time.Duration { return 0 }
