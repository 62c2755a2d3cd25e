package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// The connection variables every command reads (run reads them too, over
// its configuration file).
const (
	EnvPasswordFile = "OFFTRAIL_PASSWORD_FILE"
	EnvAPIKeyFile   = "OFFTRAIL_API_KEY_FILE"
	EnvCACert       = "OFFTRAIL_CA_CERT"
	EnvTLSInsecure  = "OFFTRAIL_TLS_INSECURE"
	EnvAWSRegion    = "OFFTRAIL_AWS_REGION"
	EnvAWSService   = "OFFTRAIL_AWS_SERVICE"
	EnvCompression  = "OFFTRAIL_HTTP_COMPRESSION"
)

// StoreForms lists the accepted store specs, for error and usage messages.
const StoreForms = "http://HOST:PORT or https://HOST:PORT (comma-separated for several nodes) for Elasticsearch/OpenSearch, or file:DIR for the embedded store"

// Connection is everything needed to reach the store. It is built in one
// place, Connect, with one precedence for every setting:
//
//	command-line flag  >  environment (OFFTRAIL_*)  >  configuration file
//
// A setting from a higher source replaces the lower one whole (an
// OFFTRAIL_STORE_URL replaces the file's embedded_dir as well as its url).
type Connection struct {
	// URLs are the cluster's nodes; empty for the embedded store.
	URLs []string
	// Dir is the embedded store's directory; empty for a cluster.
	Dir string
	// StoreFrom names where the store came from ("--store",
	// "OFFTRAIL_STORE_URL", "store.url", …), for messages.
	StoreFrom        string
	Username         string
	Password, APIKey Secret
	CACert           string
	// CACertFrom names the setting CACert came from.
	CACertFrom         string
	InsecureSkipVerify bool
	// InsecureFrom names the setting that disabled verification.
	InsecureFrom string
	AWS          *AWSSigV4
	// Compression asks the cluster to gzip its answers.
	Compression bool
}

// Embedded reports whether the connection is to the embedded store.
func (c Connection) Embedded() bool { return c.Dir != "" }

// Sources are the inputs of Connect.
type Sources struct {
	// File is the configuration file's store section (nil: no file);
	// EmbeddedDir its embedded_dir; Base the directory relative paths in
	// the file are relative to.
	File        *Store
	EmbeddedDir string
	Base        string
	// Flag is the --store value ("" when not given).
	Flag   string
	Getenv func(string) string
	// NoStore builds only credentials and TLS, for clients of a UI
	// (offtrail dashboards) rather than of the store.
	NoStore bool
}

// Connect builds the connection from its sources. An error names the
// flag, variable or configuration key the bad value came from.
func Connect(src Sources) (Connection, error) {
	getenv := src.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var c Connection
	steps := []func() error{
		func() error {
			if src.NoStore {
				return nil
			}
			return c.storeFrom(src, getenv)
		},
		func() error { return c.credentialsFrom(src, getenv) },
		func() error { return c.tlsFrom(src, getenv) },
		func() error { return c.awsFrom(src, getenv) },
		func() error { return c.compressionFrom(src, getenv) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return Connection{}, err
		}
	}
	return c, nil
}

// CheckFiles reports a CA file that cannot be read, naming its setting.
// It runs when the store is opened, not when a configuration is
// validated: a deployment's files exist only where it runs.
func (c Connection) CheckFiles() error {
	if c.CACert == "" {
		return nil
	}
	f, err := os.Open(c.CACert)
	if err != nil {
		return fmt.Errorf("%s: %w", c.CACertFrom, err)
	}
	return f.Close()
}

// ForFlag builds the connection of a command without a configuration file.
func ForFlag(flag string, getenv func(string) string) (Connection, error) {
	return Connect(Sources{Flag: flag, Getenv: getenv})
}

func (c *Connection) storeFrom(src Sources, getenv func(string) string) error {
	if f := src.File; f != nil {
		switch urls := f.AllURLs(); {
		case len(urls) > 0 && src.EmbeddedDir != "":
			return errors.New("store.url and embedded_dir are both set")
		case len(urls) > 0:
			if err := c.setStore(strings.Join(urls, ","), "store.url", src.Base); err != nil {
				return err
			}
		case src.EmbeddedDir != "":
			c.Dir, c.StoreFrom = resolve(src.Base, src.EmbeddedDir), "embedded_dir"
		}
	}
	if v := getenv(EnvStoreURL); v != "" {
		if err := c.setStore(v, EnvStoreURL, ""); err != nil {
			return err
		}
	}
	if src.Flag != "" {
		if err := c.setStore(src.Flag, "--store", ""); err != nil {
			return err
		}
	}
	if c.StoreFrom == "" {
		if src.File != nil {
			return fmt.Errorf("no store: set store.url (or %s) or embedded_dir", EnvStoreURL)
		}
		return fmt.Errorf("no store: give --store or set %s (%s)", EnvStoreURL, StoreForms)
	}
	return nil
}

// setStore parses spec and replaces the store with it; a relative file:
// path in the configuration file is relative to base.
func (c *Connection) setStore(spec, from, base string) error {
	urls, dir, err := ParseStore(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	if dir != "" {
		dir = resolve(base, dir)
	}
	c.URLs, c.Dir, c.StoreFrom = urls, dir, from
	return nil
}

// ParseStore reads a store spec: http(s) URLs, comma-separated, or
// file:DIR. Anything else is an error that lists the accepted forms: a
// bare "127.0.0.1:9200" or directory name is a typo far more often than
// a wish for a new local store.
func ParseStore(spec string) (urls []string, dir string, err error) {
	spec = strings.TrimSpace(spec)
	if d, ok := strings.CutPrefix(spec, "file:"); ok {
		if d = strings.TrimPrefix(d, "//"); d == "" {
			return nil, "", fmt.Errorf("%q names no directory: want %s", spec, StoreForms)
		}
		return nil, d, nil
	}
	for _, u := range strings.Split(spec, ",") {
		u = strings.TrimSpace(u)
		if err := checkURL(u); err != nil {
			return nil, "", fmt.Errorf("%q: %w: want %s", u, err, StoreForms)
		}
		urls = append(urls, u)
	}
	return urls, "", nil
}

func checkURL(s string) error {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return errors.New("not a store")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

func (c *Connection) credentialsFrom(src Sources, getenv func(string) string) error {
	if f := src.File; f != nil {
		c.Username = f.Username
		var err error
		if c.Password, err = fromFile(f.Password, f.PasswordFile, src.Base, "store.password"); err != nil {
			return err
		}
		if c.APIKey, err = fromFile(f.APIKey, f.APIKeyFile, src.Base, "store.api_key"); err != nil {
			return err
		}
	}
	if v := getenv(EnvUsername); v != "" {
		c.Username = v
	}
	passFrom := "store.password"
	if v, ok, err := envSecret(getenv, EnvPassword); err != nil {
		return err
	} else if ok {
		c.Password, passFrom = v, EnvPassword
	}
	if v, ok, err := envSecret(getenv, EnvAPIKey); err != nil {
		return err
	} else if ok {
		c.APIKey = v
	}
	if c.Password != "" && c.Username == "" {
		return fmt.Errorf("%s is set without a username (%s or store.username)", passFrom, EnvUsername)
	}
	return nil
}

// envSecret reads NAME or the file NAME_FILE names (Docker and Kubernetes
// secrets are files); both set is an error, as in the configuration file.
func envSecret(getenv func(string) string, name string) (Secret, bool, error) {
	v, path := getenv(name), getenv(name+"_FILE")
	switch {
	case v != "" && path != "":
		return "", false, fmt.Errorf("%s and %s_FILE are both set", name, name)
	case v != "":
		return Secret(v), true, nil
	case path == "":
		return "", false, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("%s_FILE: %w", name, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", false, fmt.Errorf("%s_FILE %s is empty", name, path)
	}
	return Secret(s), true, nil
}

func (c *Connection) tlsFrom(src Sources, getenv func(string) string) error {
	if f := src.File; f != nil {
		c.CACert, c.CACertFrom = resolve(src.Base, f.CACert), "store.ca_cert"
		if f.InsecureSkipVerify {
			c.InsecureSkipVerify, c.InsecureFrom = true, "store.insecure_skip_verify"
		}
	}
	if v := getenv(EnvCACert); v != "" {
		c.CACert, c.CACertFrom = v, EnvCACert
	}
	if c.CACert == "" {
		c.CACertFrom = ""
	}
	if b, ok, err := envBool(getenv, EnvTLSInsecure); err != nil {
		return err
	} else if ok {
		c.InsecureSkipVerify, c.InsecureFrom = b, EnvTLSInsecure
	}
	return nil
}

// envBool reads a true/false variable; ok is false when it is unset.
func envBool(getenv func(string) string, name string) (b, ok bool, err error) {
	v := getenv(name)
	if v == "" {
		return false, false, nil
	}
	if b, err = strconv.ParseBool(v); err != nil {
		return false, false, fmt.Errorf("%s=%q: want true or false", name, v)
	}
	return b, true, nil
}

// compressionFrom reads whether answers are to be gzipped.
func (c *Connection) compressionFrom(src Sources, getenv func(string) string) error {
	if f := src.File; f != nil {
		c.Compression = f.Compression
	}
	if b, ok, err := envBool(getenv, EnvCompression); err != nil {
		return err
	} else if ok {
		c.Compression = b
	}
	return nil
}

func (c *Connection) awsFrom(src Sources, getenv func(string) string) error {
	if f := src.File; f != nil && f.AWSSigV4 != nil {
		a := *f.AWSSigV4
		if err := checkAWSService(a.Service, "store.aws_sigv4.service"); err != nil {
			return err
		}
		c.AWS = &a
	}
	region, service := getenv(EnvAWSRegion), getenv(EnvAWSService)
	if region == "" && service == "" {
		return nil
	}
	if err := checkAWSService(service, EnvAWSService); err != nil {
		return err
	}
	if c.AWS == nil {
		c.AWS = &AWSSigV4{}
	}
	if region != "" {
		c.AWS.Region = region
	}
	if service != "" {
		c.AWS.Service = service
	}
	return nil
}

func checkAWSService(s, from string) error {
	if s != "" && s != "es" && s != "aoss" {
		return fmt.Errorf("%s %q: want es or aoss", from, s)
	}
	return nil
}
