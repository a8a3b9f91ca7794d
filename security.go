package main

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/redraft/redraft/internal/mux"
	"github.com/redraft/redraft/internal/peer"
	"github.com/redraft/redraft/internal/tlsconf"
)

// security is the node's protection of the shared port, wired from the
// options: TLS (optional), the cluster secret and the cluster ID that every
// peer handshake checks, and the rate-limited log of refused peers. The
// client password lives in the FSM (requirePass), because CONFIG SET
// requirepass replicates it.
type security struct {
	tls      *tlsconf.Store // nil without TLS
	secrets  *peer.Secrets
	identity *peer.Identity
	refusals *peer.RefusalLog
	peers    *peer.Config
	source   net.IP // where peer streams leave from (peerSource)
}

// refusalInterval is how often a refused address is logged again.
const refusalInterval = 10 * time.Minute

// certCheckInterval is how often the TLS files are checked for changes.
const certCheckInterval = 2 * time.Second

// newSecurity loads the TLS files and the cluster secret and opens the
// cluster identity file in dir (kept in memory with -backend inmem, whose
// Raft state is not kept either).
func newSecurity(cfg *options, dir string, log *slog.Logger) (*security, error) {
	sec := &security{refusals: peer.NewRefusalLog(log.With("src", "peers"), refusalInterval), source: peerSource(cfg.bind)}
	list, err := cfg.clusterSecrets()
	if err != nil {
		return nil, err
	}
	sec.secrets = peer.NewSecrets(list...)
	idPath := filepath.Join(dir, peer.IdentityFile)
	if cfg.backend == "inmem" {
		idPath = ""
	}
	if sec.identity, err = peer.OpenIdentity(idPath); err != nil {
		return nil, err
	}
	if cfg.tlsEnabled() {
		files := tlsconf.Files{Cert: cfg.tlsCertFile, Key: cfg.tlsKeyFile, CA: cfg.tlsCAFile}
		if sec.tls, err = tlsconf.Load(files, tlsconf.ClientAuth(cfg.tlsAuthClients)); err != nil {
			return nil, err
		}
	}
	sec.peers = &peer.Config{Secrets: sec.secrets, Identity: sec.identity, Name: cfg.advertise}
	warnIfOpen(cfg, list, log)
	return sec, nil
}

// warnIfOpen warns when a port reachable from other hosts has neither a
// password nor TLS.
func warnIfOpen(cfg *options, secrets []string, log *slog.Logger) {
	ip := net.ParseIP(cfg.bind)
	if ip != nil && ip.IsLoopback() {
		return
	}
	if cfg.requirePass == "" && len(secrets) == 0 && !cfg.tlsEnabled() {
		log.Warn("the port is reachable from other hosts and has no --requirepass, no cluster secret and no TLS: anyone who can reach it can run commands and join the cluster", "bind", cfg.bind)
	}
}

// muxOptions secure the mux with this configuration.
func (sec *security) muxOptions() mux.Options {
	return mux.Options{TLS: sec.tls, Peers: sec.peers, Refusals: sec.refusals}
}

// dialer opens this node's authenticated streams to its peers: Raft,
// -join and --follower-proxy relays.
func (sec *security) dialer() *mux.Dialer {
	return &mux.Dialer{TLS: sec.tls, Peers: sec.peers, Refusals: sec.refusals, Source: sec.source}
}

// peerSource is the address streams to other nodes leave from: -bind when
// it is a specific IP, so that a peer sees this node's own address as the
// source (a node bound to 127.0.0.11 is told apart from one bound to
// 127.0.0.12, by a firewall or the tests' fault-injecting proxy); nil for
// 0.0.0.0, :: or a host name, where the system chooses.
func peerSource(bind string) net.IP {
	if ip := net.ParseIP(bind); ip != nil && !ip.IsUnspecified() {
		return ip
	}
	return nil
}

// watchCertificates reloads the TLS files when they change, until ctx ends.
func (sec *security) watchCertificates(ctx context.Context, log *slog.Logger) {
	if sec.tls != nil {
		sec.tls.Watch(ctx, certCheckInterval, log.With("src", "tls"))
	}
}

// reload re-reads, on SIGHUP, the TLS files and the cluster secret file.
// What fails to load is logged and the previous material stays in use.
func (sec *security) reload(cfg *options, log *slog.Logger) {
	if sec.tls != nil {
		if err := sec.tls.Reload(); err != nil {
			log.Warn("SIGHUP: could not reload the TLS files; keeping the previous certificates", "err", err)
		} else {
			log.Info("SIGHUP: TLS certificates reloaded", "cert", cfg.tlsCertFile)
		}
	}
	if cfg.clusterSecretFile != "" {
		list, err := peer.ReadSecretFile(cfg.clusterSecretFile)
		if err != nil {
			log.Warn("SIGHUP: could not reload the cluster secret file; keeping the previous secrets", "err", err)
			return
		}
		sec.secrets.Set(list)
		log.Info("SIGHUP: cluster secrets reloaded", "file", cfg.clusterSecretFile, "secrets", len(list))
	}
}
