// Package tlstest makes a certificate authority and certificates for tests
// with crypto/x509 (no openssl needed): node certificates good for both
// ends of a connection, as redraft's are.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a test certificate authority.
type CA struct {
	Cert   *x509.Certificate
	Key    *ecdsa.PrivateKey
	PEM    []byte
	serial atomic.Int64
}

// NewCA makes a CA named name.
func NewCA(tb testing.TB, name string) *CA {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	ca := &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.serial.Store(1)
	return ca
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// Issue signs a certificate for name (its CN) valid for serverAuth and
// clientAuth, with ips as IP SANs; it returns the PEM certificate and key
// and the serial number.
func (ca *CA) Issue(tb testing.TB, name string, ips ...net.IP) (certPEM, keyPEM []byte, serial int64) {
	tb.Helper()
	key := newKey(tb)
	serial = ca.serial.Add(1)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		tb.Fatalf("issue %s: %v", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), serial
}

// Files are the paths of one node's (or client's) TLS files.
type Files struct {
	Cert, Key, CA string
	Serial        int64 // of the certificate last written
}

// WriteFiles issues a certificate for name and writes it, its key and the
// CA into dir as name.crt, name.key and ca.crt.
func (ca *CA) WriteFiles(tb testing.TB, dir, name string, ips ...net.IP) Files {
	tb.Helper()
	f := Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: filepath.Join(dir, "ca.crt")}
	ca.Rewrite(tb, &f, name, ips...)
	write(tb, f.CA, ca.PEM)
	return f
}

// Rewrite issues a new certificate and key into f's files (a renewal).
func (ca *CA) Rewrite(tb testing.TB, f *Files, name string, ips ...net.IP) {
	tb.Helper()
	certPEM, keyPEM, serial := ca.Issue(tb, name, ips...)
	// The key first: a reader that sees the new certificate with the old
	// key fails and retries, never the other way round for long.
	write(tb, f.Key, keyPEM)
	write(tb, f.Cert, certPEM)
	f.Serial = serial
}

func write(tb testing.TB, path string, b []byte) {
	tb.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// Pool is a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// ClientConfig is a client's TLS configuration trusting this CA, with the
// files' certificate when f is not nil.
func (ca *CA) ClientConfig(tb testing.TB, f *Files) *tls.Config {
	tb.Helper()
	cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	if f != nil {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			tb.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}
