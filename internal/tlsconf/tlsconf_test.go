package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/tlsconf/tlstest"
)

var lo = net.IPv4(127, 0, 0, 1)

func loadStore(t *testing.T, f tlstest.Files, auth ClientAuth) *Store {
	t.Helper()
	s, err := Load(Files{Cert: f.Cert, Key: f.Key, CA: f.CA}, auth)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// connect runs a TLS handshake between server and client configurations
// over loopback and returns both sides' states and errors.
func connect(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.SetDeadline(time.Now().Add(5 * time.Second))
	b.SetDeadline(time.Now().Add(5 * time.Second))
	srv := tls.Server(a, server)
	cli := tls.Client(b, client)
	errc := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		if err == nil {
			// TLS 1.3 clients learn of a refused certificate on a read.
			_, err = srv.Write([]byte{1})
		}
		errc <- err
	}()
	cerr := cli.Handshake()
	if cerr == nil {
		_, cerr = io.ReadFull(cli, make([]byte, 1))
	}
	if cerr != nil {
		b.Close()
		a.Close()
	}
	serr := <-errc
	return srv.ConnectionState(), serr, cerr
}

// Two nodes with certificates from one CA connect with mutual TLS, and the
// dialing node is accepted as a peer.
func TestPeersMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	dir := t.TempDir()
	for _, auth := range []ClientAuth{ClientAuthYes, ClientAuthOptional, ClientAuthNo} {
		s1 := loadStore(t, ca.WriteFiles(t, dir, "n1", lo), auth)
		s2 := loadStore(t, ca.WriteFiles(t, dir, "n2", lo), auth)
		st, serr, cerr := connect(t, s1.ServerConfig(), s2.ClientConfig())
		if serr != nil || cerr != nil {
			t.Fatalf("%s: server %v, client %v", auth, serr, cerr)
		}
		if err := s1.VerifyPeer(st); err != nil {
			t.Errorf("%s: VerifyPeer: %v", auth, err)
		}
	}
}

// tls-auth-clients governs clients, never peers: a connection without a
// certificate is a client at most.
func TestClientAuthModes(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	other := tlstest.NewCA(t, "other")
	dir := t.TempDir()
	nf := ca.WriteFiles(t, dir, "n1", lo)
	foreign := other.WriteFiles(t, t.TempDir(), "x", lo)
	noCert := ca.ClientConfig(t, nil)
	noCert.ServerName = "127.0.0.1"
	// Presented whatever the server asks for (Go's client would otherwise
	// hold back a certificate the server's CAs did not sign).
	badCert := ca.ClientConfig(t, &foreign)
	badCert.ServerName = "127.0.0.1"
	foreignCert := badCert.Certificates[0]
	badCert.Certificates = nil
	badCert.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreignCert, nil }
	for _, tc := range []struct {
		auth          ClientAuth
		noCertOK      bool
		foreignCertOK bool
	}{
		{ClientAuthYes, false, false},
		{ClientAuthOptional, true, false},
		{ClientAuthNo, true, true},
	} {
		s := loadStore(t, nf, tc.auth)
		st, serr, _ := connect(t, s.ServerConfig(), noCert)
		if (serr == nil) != tc.noCertOK {
			t.Errorf("%s, no certificate: %v", tc.auth, serr)
		}
		if serr == nil && !errors.Is(s.VerifyPeer(st), ErrNoPeerCertificate) {
			t.Errorf("%s: a connection without a certificate passed as a peer", tc.auth)
		}
		st, serr, _ = connect(t, s.ServerConfig(), badCert)
		if (serr == nil) != tc.foreignCertOK {
			t.Errorf("%s, another CA's certificate: %v", tc.auth, serr)
		}
		if serr == nil && s.VerifyPeer(st) == nil {
			t.Errorf("%s: another CA's certificate passed as a peer", tc.auth)
		}
	}
}

// A node refuses to dial a server whose certificate another CA signed.
func TestClientConfigChecksTheServer(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	other := tlstest.NewCA(t, "other")
	s := loadStore(t, ca.WriteFiles(t, t.TempDir(), "n1", lo), ClientAuthYes)
	impostor := loadStore(t, other.WriteFiles(t, t.TempDir(), "x", lo), ClientAuthNo)
	_, _, cerr := connect(t, impostor.ServerConfig(), s.ClientConfig())
	if !errors.Is(cerr, ErrUntrustedPeer) {
		t.Fatalf("dialing an impostor: %v", cerr)
	}
}

// Reload and Watch pick up renewed files; bad files keep the old ones.
func TestReloadAndWatch(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	dir := t.TempDir()
	f := ca.WriteFiles(t, dir, "n1", lo)
	s := loadStore(t, f, ClientAuthYes)
	serial := func() int64 { return s.Certificate().Leaf.SerialNumber.Int64() }
	if serial() != f.Serial {
		t.Fatalf("serial %d, want %d", serial(), f.Serial)
	}
	ca.Rewrite(t, &f, "n1", lo)
	if err := s.Reload(); err != nil || serial() != f.Serial {
		t.Fatalf("after Reload: serial %d (%v), want %d", serial(), err, f.Serial)
	}
	// A broken certificate file: Reload fails, the previous one stays.
	good := f.Serial
	os.WriteFile(f.Cert, []byte("garbage"), 0o600)
	if err := s.Reload(); err == nil || serial() != good {
		t.Fatalf("broken file: err %v, serial %d", err, serial())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		s.Watch(ctx, 10*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	ca.Rewrite(t, &f, "n1", lo)
	deadline := time.Now().Add(5 * time.Second)
	for serial() != f.Serial {
		if time.Now().After(deadline) {
			t.Fatalf("Watch did not pick up the new certificate: serial %d, want %d", serial(), f.Serial)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestLoadErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	dir := t.TempDir()
	f := ca.WriteFiles(t, dir, "n1", lo)
	for _, tc := range []struct {
		files Files
		auth  ClientAuth
		want  string
	}{
		{Files{Cert: f.Cert, Key: f.Key, CA: f.CA}, "maybe", "tls-auth-clients"},
		{Files{Cert: f.Cert + "x", Key: f.Key, CA: f.CA}, ClientAuthYes, "no such file"},
		{Files{Cert: f.Cert, Key: f.CA, CA: f.CA}, ClientAuthYes, "tls-cert-file/tls-key-file"},
		{Files{Cert: f.Cert, Key: f.Key, CA: f.Key}, ClientAuthYes, "no PEM certificate"},
	} {
		if _, err := Load(tc.files, tc.auth); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v %s: %v, want %q", tc.files, tc.auth, err, tc.want)
		}
	}
}
