package notify

import (
	"fmt"
	"os"
	"strings"
)

const secretToken = "<secret>"

// Secret is a string that never prints: String, GoString, JSON and YAML all
// give "<secret>" (Alertmanager's config.Secret). Webhook URLs, routing keys,
// HMAC keys and passwords are Secrets so that a logged or dumped
// configuration does not leak them.
type Secret string

func (s Secret) String() string   { return secretToken }
func (s Secret) GoString() string { return secretToken }

// MarshalJSON hides the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + secretToken + `"`), nil }

// MarshalYAML hides the value.
func (s Secret) MarshalYAML() (any, error) { return secretToken, nil }

// Value returns the secret itself, for the one place that must send it.
func (s Secret) Value() string { return string(s) }

// LoadSecret resolves a secret given inline or as a file (Kubernetes and
// Docker secrets are files). At most one may be set; the file's trailing
// newline is dropped. name is the inline field's YAML name, for errors.
func LoadSecret(inline Secret, file, name string) (Secret, error) {
	switch {
	case inline != "" && file != "":
		return "", fmt.Errorf("%s and %s_file are mutually exclusive", name, name)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_file: %w", name, err)
		}
		return Secret(strings.TrimRight(string(b), "\r\n")), nil
	}
	return inline, nil
}
