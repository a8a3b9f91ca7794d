// Package peer authenticates the connections redraft nodes open to each
// other on the shared port: a challenge and response keyed by the cluster
// secret, in which both sides prove that they know the secret without
// sending it, and exchange their cluster IDs, so that nodes of two clusters
// never talk. It also holds the cluster identity (the ID a cluster gets when
// it is bootstrapped, stored in every member's data directory), the small
// join protocol that -join speaks over an authenticated stream, and a log
// of refused peers that is rate-limited by address.
package peer

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ClusterID identifies one cluster: 16 random bytes chosen when the cluster
// is bootstrapped.
type ClusterID [16]byte

// NewClusterID returns a random ID.
func NewClusterID() (ClusterID, error) {
	var id ClusterID
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("random cluster ID: %w", err)
	}
	return id, nil
}

// String is the ID in hex, as stored in the cluster-id file.
func (id ClusterID) String() string { return hex.EncodeToString(id[:]) }

// ParseClusterID reads an ID written by String.
func ParseClusterID(s string) (ClusterID, error) {
	var id ClusterID
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("bad cluster ID %q: want %d hex digits", strings.TrimSpace(s), 2*len(id))
	}
	copy(id[:], b)
	return id, nil
}

// IdentityFile is the name of the file, in the data directory, that holds
// the node's cluster ID.
const IdentityFile = "cluster-id"

// Identity is this node's cluster ID: unknown until the node bootstraps a
// cluster or joins one, then kept in a file so that it survives restarts.
// It is safe for concurrent use.
type Identity struct {
	path  string // "" keeps the ID in memory only
	mu    sync.Mutex
	id    ClusterID
	known bool
}

// OpenIdentity reads the ID stored at path, if any. An empty path keeps
// the identity in memory (the in-memory log store, whose state does not
// outlive the process either).
func OpenIdentity(path string) (*Identity, error) {
	i := &Identity{path: path}
	if path == "" {
		return i, nil
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return i, nil
	case err != nil:
		return nil, fmt.Errorf("read cluster ID: %w", err)
	}
	id, err := ParseClusterID(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	i.id, i.known = id, true
	return i, nil
}

// Get returns the ID and whether it is known.
func (i *Identity) Get() (ClusterID, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.id, i.known
}

// Set stores id, durably (written to a temporary file, synced and renamed)
// before it is used.
func (i *Identity) Set(id ClusterID) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.known && i.id == id {
		return nil
	}
	if i.path != "" {
		if err := writeFileSync(i.path, []byte(id.String()+"\n")); err != nil {
			return fmt.Errorf("store cluster ID: %w", err)
		}
	}
	i.id, i.known = id, true
	return nil
}

// Forget drops the ID (a node without Raft state belongs to no cluster yet).
func (i *Identity) Forget() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.known = false
	i.id = ClusterID{}
	if i.path == "" {
		return nil
	}
	if err := os.Remove(i.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove cluster ID: %w", err)
	}
	return nil
}

// writeFileSync replaces path with data atomically and durably.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
