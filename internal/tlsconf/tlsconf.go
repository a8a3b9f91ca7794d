// Package tlsconf holds a node's TLS material — its certificate and key and
// the CA that signs every node's certificate — re-read from the files
// without a restart (Reload on SIGHUP, Watch when the files change), and
// builds the TLS configurations of the shared port: the server side, where
// tls-auth-clients governs clients, and mutual TLS between peers, which
// always present a certificate the CA signed.
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ClientAuth is tls-auth-clients: whether clients must present a
// certificate the CA signed.
type ClientAuth string

// The values of tls-auth-clients, as in Redis.
const (
	ClientAuthYes      ClientAuth = "yes"      // required
	ClientAuthOptional ClientAuth = "optional" // checked when given
	ClientAuthNo       ClientAuth = "no"       // not asked for
)

// Files are the paths of the TLS material.
type Files struct {
	Cert, Key, CA string
}

// material is one loaded generation of the files.
type material struct {
	cert  tls.Certificate
	pool  *x509.CertPool
	stamp string // sizes and modification times, to notice changes
}

// Store is the current TLS material. It is safe for concurrent use; every
// new connection uses the material current at its handshake.
type Store struct {
	files Files
	auth  ClientAuth
	cur   atomic.Pointer[material]
	mu    sync.Mutex // serialises reloads
}

// Load reads the files once; it fails when any is missing or invalid.
func Load(files Files, auth ClientAuth) (*Store, error) {
	switch auth {
	case ClientAuthYes, ClientAuthOptional, ClientAuthNo:
	default:
		return nil, fmt.Errorf("tls-auth-clients must be yes, no or optional, not %q", auth)
	}
	s := &Store{files: files, auth: auth}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the files. On error the current material stays in use.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := load(s.files)
	if err != nil {
		return err
	}
	s.cur.Store(m)
	return nil
}

// load reads and checks every file.
func load(f Files) (*material, error) {
	stamp, err := stampOf(f)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("tls-cert-file/tls-key-file: %w", err)
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls-cert-file: %w", err)
		}
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("tls-ca-cert-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("tls-ca-cert-file %s: no PEM certificate found", f.CA)
	}
	return &material{cert: cert, pool: pool, stamp: stamp}, nil
}

// stampOf summarises the files' sizes and modification times.
func stampOf(f Files) (string, error) {
	stamp := ""
	for _, p := range []string{f.Cert, f.Key, f.CA} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		stamp += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return stamp, nil
}

// Watch reloads the material whenever the files change, checking every
// interval, until ctx ends. Failed reloads are logged and the previous
// material stays in use.
func (s *Store) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stamp, err := stampOf(s.files)
		if err != nil || stamp == s.cur.Load().stamp {
			continue
		}
		if err := s.Reload(); err != nil {
			log.Warn("TLS files changed but could not be loaded; keeping the previous certificates", "err", err)
			continue
		}
		log.Info("TLS certificates reloaded (files changed)", "cert", s.files.Cert)
	}
}

// Certificate is the node's current certificate (its leaf parsed).
func (s *Store) Certificate() *tls.Certificate {
	c := s.cur.Load().cert
	return &c
}

// ServerConfig is the configuration of the shared port. Every connection
// is asked for a certificate: clients as tls-auth-clients says, peers
// always (checked by VerifyPeer once the mux knows it is a peer).
func (s *Store) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := s.cur.Load()
			cfg := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{m.cert},
				ClientCAs:    m.pool,
			}
			switch s.auth {
			case ClientAuthYes:
				cfg.ClientAuth = tls.RequireAndVerifyClientCert
			case ClientAuthOptional:
				cfg.ClientAuth = tls.VerifyClientCertIfGiven
			default:
				// Asked for but not checked: a client's is ignored, a
				// peer's is checked by VerifyPeer.
				cfg.ClientAuth = tls.RequestClientCert
			}
			return cfg, nil
		},
	}
}

// ErrNoPeerCertificate means a peer connected without a certificate.
var ErrNoPeerCertificate = errors.New("the peer presented no TLS certificate")

// ErrUntrustedPeer means a peer's certificate does not verify against the
// CA (another CA signed it, it expired, or it is not for this use).
var ErrUntrustedPeer = errors.New("the peer's TLS certificate is not trusted")

// VerifyPeer checks that the other end of an accepted connection, now
// known to be a peer, presented a certificate the CA signed, whatever
// tls-auth-clients says.
func (s *Store) VerifyPeer(st tls.ConnectionState) error {
	if len(st.VerifiedChains) > 0 {
		return nil
	}
	if len(st.PeerCertificates) == 0 {
		return ErrNoPeerCertificate
	}
	return verify(st.PeerCertificates, s.cur.Load().pool, x509.ExtKeyUsageClientAuth)
}

// ClientConfig is the configuration a node dials its peers with: it
// presents its certificate and accepts the other's only if the CA signed
// it. Peers are verified against the CA, not against their host names:
// every certificate the CA signed for a node is a member's.
func (s *Store) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection: the chain, not the name
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.Certificate(), nil
		},
		VerifyConnection: func(st tls.ConnectionState) error {
			if len(st.PeerCertificates) == 0 {
				return ErrNoPeerCertificate
			}
			return verify(st.PeerCertificates, s.cur.Load().pool, x509.ExtKeyUsageServerAuth)
		},
	}
}

// verify checks a presented chain against pool for usage.
func verify(chain []*x509.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUntrustedPeer, err)
	}
	return nil
}
