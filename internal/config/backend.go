package config

import "github.com/offtrail/offtrail/detector/backends"

// BackendOptions returns what backends.Open needs to reach the cluster of
// a connection (not the embedded store: Dir is not part of it).
func (c Connection) BackendOptions() backends.Options {
	opts := backends.Options{
		URLs:               c.URLs,
		Username:           c.Username,
		Password:           c.Password.Reveal(),
		APIKey:             c.APIKey.Reveal(),
		CACertFile:         c.CACert,
		InsecureSkipVerify: c.InsecureSkipVerify,
		Compression:        c.Compression,
	}
	if c.AWS != nil {
		opts.AWS = &backends.AWSOptions{Region: c.AWS.Region, Service: c.AWS.Service}
	}
	return opts
}
