//go:build unix

package bench

import (
	"runtime"
	"syscall"
)

// PeakRSS is the process's peak resident set in bytes (getrusage maxrss).
func PeakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return ru.Maxrss // bytes there, KiB on Linux
	}
	return ru.Maxrss * 1024
}
