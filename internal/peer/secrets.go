package peer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// Secrets are the cluster secrets. The first one proves this node to the
// others; every one is accepted from the others, so a secret can be rotated
// without splitting the cluster (add the new one second everywhere, then
// first everywhere, then drop the old one). No secret at all is the empty
// secret: the handshake still runs and still keeps clusters apart by ID,
// but anyone who can reach the port can pass it. Safe for concurrent use.
type Secrets struct {
	list atomic.Pointer[[][]byte]
}

// NewSecrets holds list (nil or empty: no secret).
func NewSecrets(list ...string) *Secrets {
	s := &Secrets{}
	s.Set(list)
	return s
}

// Set replaces the secrets (a reload).
func (s *Secrets) Set(list []string) {
	out := make([][]byte, 0, len(list))
	for _, v := range list {
		out = append(out, []byte(v))
	}
	if len(out) == 0 {
		out = append(out, nil)
	}
	s.list.Store(&out)
}

// proving is the secret this node proves itself with.
func (s *Secrets) proving() []byte { return (*s.list.Load())[0] }

// accepted are the secrets a peer may prove itself with.
func (s *Secrets) accepted() [][]byte { return *s.list.Load() }

// maxSecretFile bounds a secret file.
const maxSecretFile = 64 << 10

// ReadSecretFile reads a --cluster-secret-file: one secret a line (the
// first proves this node, all are accepted), blank lines ignored, line
// ends and surrounding spaces trimmed.
func ReadSecretFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret file: %w", err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("cluster secret file %s: larger than %d bytes", path, maxSecretFile)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, string(line))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("cluster secret file " + path + " holds no secret")
	}
	return out, nil
}
