//go:build !unix

package bench

// PeakRSS is unknown off Unix.
func PeakRSS() int64 { return 0 }
