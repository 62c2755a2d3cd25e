//go:build unix

package bench

import (
	"os"
	"runtime"
	"syscall"
	"time"
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

// ProcessCPU is the CPU this process has used so far, user + system, on
// every thread (getrusage).
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ResetPeakRSS makes PeakRSS start again from the current resident set, so
// a measurement's peak leaves out loading and earlier steps. Only Linux
// can (writing 5 to /proc/self/clear_refs); false elsewhere.
func ResetPeakRSS() bool {
	if runtime.GOOS != "linux" {
		return false
	}
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// childPeakRSS is a waited-for child's peak resident set in bytes.
func childPeakRSS(ps *os.ProcessState) uint64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return uint64(ru.Maxrss)
	}
	return uint64(ru.Maxrss) * 1024
}
