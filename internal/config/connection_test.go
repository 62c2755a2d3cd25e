package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const connDir = "testdata/conn"

// connect builds a connection the way run (file given) or any other
// command (no file, a --store flag) does.
func connect(file, flag string, vars map[string]string) (Connection, error) {
	if file == "" {
		return ForFlag(flag, env(vars))
	}
	cfg, err := Load(filepath.Join(connDir, file), env(vars))
	if err != nil {
		return Connection{}, err
	}
	return cfg.Conn, nil
}

// One precedence for every setting: flag > environment > file.
func TestConnectPrecedence(t *testing.T) {
	ca := filepath.Join("testdata", "ca.pem")
	for _, tc := range []struct {
		name       string
		file, flag string
		env        map[string]string
		want       Connection
	}{
		{
			name: "file alone",
			file: "store.yml",
			want: Connection{URLs: []string{"https://file-node:9200"}, StoreFrom: "store.url", Username: "file-user", Password: "file-password",
				CACert: filepath.Join(connDir, "../ca.pem"), CACertFrom: "store.ca_cert", InsecureSkipVerify: true, InsecureFrom: "store.insecure_skip_verify",
				AWS: &AWSSigV4{Region: "eu-west-1"}, Compression: true},
		},
		{
			name: "environment over file",
			file: "store.yml",
			env: map[string]string{EnvStoreURL: "https://env-node:9200", EnvUsername: "env-user", EnvPasswordFile: connDir + "/es-password",
				EnvCACert: ca, EnvTLSInsecure: "false", EnvAWSRegion: "us-east-1", EnvAWSService: "aoss", EnvCompression: "false"},
			want: Connection{URLs: []string{"https://env-node:9200"}, StoreFrom: EnvStoreURL, Username: "env-user", Password: "from-env-file",
				CACert: ca, CACertFrom: EnvCACert, InsecureFrom: EnvTLSInsecure, AWS: &AWSSigV4{Region: "us-east-1", Service: "aoss"}},
		},
		{
			name: "flag over environment",
			flag: "file:/srv/offtrail",
			env:  map[string]string{EnvStoreURL: "https://env-node:9200"},
			want: Connection{Dir: "/srv/offtrail", StoreFrom: "--store"},
		},
		{
			name: "environment URL replaces the file's embedded_dir",
			file: "embedded.yml",
			env:  map[string]string{EnvStoreURL: "http://a:9200,http://b:9200"},
			want: Connection{URLs: []string{"http://a:9200", "http://b:9200"}, StoreFrom: EnvStoreURL},
		},
		{
			name: "embedded_dir relative to the file",
			file: "embedded.yml",
			want: Connection{Dir: filepath.Join(connDir, "data"), StoreFrom: "embedded_dir"},
		},
		{
			name: "file: URL in the file, relative to it",
			file: "file_url.yml",
			want: Connection{Dir: filepath.Join(connDir, "data"), StoreFrom: "store.url"},
		},
		{
			name: "api key from its file",
			flag: "https://es:9200",
			env:  map[string]string{EnvAPIKeyFile: connDir + "/es-password"},
			want: Connection{URLs: []string{"https://es:9200"}, StoreFrom: "--store", APIKey: "from-env-file"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := connect(tc.file, tc.flag, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) || got.Password.Reveal() != tc.want.Password.Reveal() {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// An error about a value names where the value came from: the variable,
// the flag or the configuration key.
func TestConnectErrorsNameTheSource(t *testing.T) {
	for _, tc := range []struct {
		name       string
		file, flag string
		env        map[string]string
		want       []string
	}{
		{"bare host:port flag", "", "127.0.0.1:19200", nil, []string{"--store", `"127.0.0.1:19200"`, "file:DIR", "https://"}},
		{"ftp flag", "", "ftp://x", nil, []string{"--store", "ftp://x", "http://HOST:PORT"}},
		{"bare directory flag", "", "data/store", nil, []string{"--store", "file:DIR"}},
		{"file: without a directory", "", "file:", nil, []string{"names no directory"}},
		{"URL without host", "", "http://", nil, []string{"no host"}},
		{"one bad node of two", "", "http://a:9200,b:9200", nil, []string{`"b:9200"`}},
		{"bad URL from the environment", "", "", map[string]string{EnvStoreURL: "es:9200"}, []string{EnvStoreURL, "es:9200"}},
		{"bad URL in the file", "bad_url.yml", "", nil, []string{"bad_url.yml", "store.url", "127.0.0.1:9200"}},
		{"no store at all", "", "", nil, []string{"--store", EnvStoreURL}},
		{"password file missing", "", "http://a:9200", map[string]string{EnvUsername: "u", EnvPasswordFile: "/nonexistent/pw"}, []string{EnvPasswordFile, "/nonexistent/pw"}},
		{"password file empty", "", "http://a:9200", map[string]string{EnvUsername: "u", EnvPasswordFile: connDir + "/empty"}, []string{EnvPasswordFile, "empty"}},
		{"password and its file", "", "http://a:9200", map[string]string{EnvUsername: "u", EnvPassword: "p", EnvPasswordFile: connDir + "/es-password"}, []string{EnvPassword, EnvPasswordFile}},
		{"password without user", "", "http://a:9200", map[string]string{EnvPassword: "p"}, []string{EnvPassword, EnvUsername}},
		{"api key file missing", "", "http://a:9200", map[string]string{EnvAPIKeyFile: "/nonexistent/key"}, []string{EnvAPIKeyFile}},
		{"CA missing", "", "https://a:9200", map[string]string{EnvCACert: "/nonexistent/ca.pem"}, []string{EnvCACert, "/nonexistent/ca.pem"}},
		{"CA missing from the file's env override", "store.yml", "", map[string]string{EnvCACert: "/nonexistent/ca.pem"}, []string{EnvCACert}},
		{"TLS insecure not a bool", "", "https://a:9200", map[string]string{EnvTLSInsecure: "maybe"}, []string{EnvTLSInsecure, "maybe"}},
		{"compression not a bool", "", "https://a:9200", map[string]string{EnvCompression: "gzip"}, []string{EnvCompression, "gzip"}},
		{"AWS service", "", "https://a:9200", map[string]string{EnvAWSService: "s3"}, []string{EnvAWSService, "es or aoss"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := connect(tc.file, tc.flag, tc.env)
			if err == nil {
				err = c.CheckFiles() // as opening the store does
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "from-env-file") || strings.Contains(err.Error(), "file-password") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}
