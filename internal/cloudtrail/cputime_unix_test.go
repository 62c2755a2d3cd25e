//go:build unix

package cloudtrail

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time. Benchmarks report events
// per CPU second too, since wall time on a shared machine says little.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
