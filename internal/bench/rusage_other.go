//go:build !unix

package bench

import (
	"os"
	"time"
)

// PeakRSS is unknown off Unix.
func PeakRSS() int64 { return 0 }

// ProcessCPU is unknown off Unix.
func ProcessCPU() time.Duration { return 0 }

// ResetPeakRSS cannot off Unix.
func ResetPeakRSS() bool { return false }

// childPeakRSS is unknown off Unix.
func childPeakRSS(*os.ProcessState) uint64 { return 0 }
