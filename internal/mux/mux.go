// Package mux shares one listening port between Redis clients and Raft
// peers. With TLS configured, every connection is TLS first (a plain-text
// one is refused); then the first byte of the (decrypted) stream decides
// where it goes: the Raft byte starts an authenticated peer stream
// (internal/peer), anything else is a Redis client.
package mux

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/redraft/redraft/internal/peer"
	"github.com/redraft/redraft/internal/tlsconf"
)

// raftHeader is the first byte a peer sends on a stream. It is never the
// first byte of a RESP request ('*') or of an inline command (printable text).
const raftHeader byte = 0x01

// tlsHandshakeRecord is the first byte of a TLS connection (a handshake
// record carrying the ClientHello).
const tlsHandshakeRecord byte = 0x16

// sniffTimeout bounds how long a new connection may stay silent before it is
// treated as a Redis client (clients from connection pools often dial first
// and speak later; Raft peers always speak at once).
const sniffTimeout = 2 * time.Second

// handshakeTimeout bounds a TLS handshake and a peer handshake.
const handshakeTimeout = 10 * time.Second

// Options secure the shared port.
type Options struct {
	// TLS, when set, makes the port TLS only: clients as tls-auth-clients
	// says, peers always with a certificate the CA signed.
	TLS *tlsconf.Store
	// Peers authenticates every peer stream (challenge and response with
	// the cluster secret, cluster IDs compared).
	Peers *peer.Config
	// Refusals logs refused connections, rate-limited by address.
	Refusals *peer.RefusalLog
}

// Mux splits one listening socket into a Raft stream listener, a join
// listener and a RESP client listener. Each connection is secured and
// sniffed on its own goroutine, so a slow client never blocks accept.
type Mux struct {
	ln      net.Listener
	log     *slog.Logger
	opts    Options
	tlsConf *tls.Config // server side, nil without TLS
	raftLn  *chanListener
	redisLn *chanListener
	joinLn  *chanListener
}

// New wraps ln. Call Serve to start accepting.
func New(ln net.Listener, log *slog.Logger, opts Options) *Mux {
	m := &Mux{
		ln:      ln,
		log:     log,
		opts:    opts,
		raftLn:  newChanListener(ln.Addr()),
		redisLn: newChanListener(ln.Addr()),
		joinLn:  newChanListener(ln.Addr()),
	}
	if opts.TLS != nil {
		m.tlsConf = opts.TLS.ServerConfig()
	}
	return m
}

// Serve accepts until the listener closes.
func (m *Mux) Serve() {
	defer m.raftLn.Close()
	defer m.redisLn.Close()
	defer m.joinLn.Close()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		go m.route(c)
	}
}

// Clients is the listener of Redis client connections. Streams a follower
// relays for its clients (--follower-proxy) arrive here too, as *PeerConn:
// they are authenticated already.
func (m *Mux) Clients() net.Listener { return m.redisLn }

// Raft is the listener of authenticated Raft streams.
func (m *Mux) Raft() net.Listener { return m.raftLn }

// Joins is the listener of authenticated join streams (*PeerConn), each
// carrying one join request (peer.ReadJoinRequest).
func (m *Mux) Joins() net.Listener { return m.joinLn }

// PeerConn is an authenticated peer stream handed to the front end (a
// relay) or to the join listener.
type PeerConn struct {
	net.Conn
	Peer peer.Peer
}

// route secures the connection (TLS), reads the first byte and hands the
// connection on, replaying whatever was read past what was consumed.
func (m *Mux) route(c net.Conn) {
	if m.tlsConf != nil {
		tc, ok := m.startTLS(c)
		if !ok {
			c.Close()
			return
		}
		c = tc
	}
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	first, err := br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	var ne net.Error
	switch {
	case err == nil && first[0] == raftHeader:
		_, _ = br.ReadByte()
		m.acceptPeer(c, br)
	case err == nil || (errors.As(err, &ne) && ne.Timeout()):
		m.redisLn.push(replay(c, br))
	default:
		c.Close()
	}
}

// startTLS runs the server side of TLS on c; a connection that does not
// start with a TLS record is refused.
func (m *Mux) startTLS(c net.Conn) (net.Conn, bool) {
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		return nil, false
	}
	if first[0] != tlsHandshakeRecord {
		m.refusePlainText(c, first[0])
		return nil, false
	}
	tc := tls.Server(replay(c, br), m.tlsConf)
	if err := tc.Handshake(); err != nil {
		m.log.Debug("TLS handshake failed", "addr", c.RemoteAddr().String(), "err", err)
		return nil, false
	}
	_ = c.SetDeadline(time.Time{})
	return tc, true
}

// plainTextRefusal is what a plain-text client gets on a TLS port.
const plainTextRefusal = "-ERR TLS required: this port accepts TLS connections only\r\n"

// refusePlainText answers a plain-text connection on a TLS port: a client
// gets a RESP error before the connection closes, a peer (the Raft byte)
// is only logged.
func (m *Mux) refusePlainText(c net.Conn, first byte) {
	addr := c.RemoteAddr().String()
	if first == raftHeader {
		m.opts.Refusals.Refused(hostOf(addr), "refused a peer that connected without TLS (this node has --tls-cert-file; every node needs it)")
		return
	}
	m.log.Debug("plain-text connection on the TLS port refused", "addr", addr)
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c, plainTextRefusal)
	// Half-close and drain, so the error reaches the client before the
	// connection is reset by the bytes it sent.
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
	}
}

// acceptPeer authenticates a peer stream (its certificate with TLS, then
// the handshake) and hands it to the listener of its purpose.
func (m *Mux) acceptPeer(c net.Conn, br *bufio.Reader) {
	addr := c.RemoteAddr().String()
	if tc, ok := c.(*tls.Conn); ok {
		if err := m.opts.TLS.VerifyPeer(tc.ConnectionState()); err != nil {
			m.opts.Refusals.Refused(hostOf(addr), "refused a peer without a valid TLS certificate", "err", err)
			c.Close()
			return
		}
	}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	p, err := peer.Accept(struct {
		io.Reader
		io.Writer
	}{br, c}, m.opts.Peers)
	if err != nil {
		m.refusedInbound(addr, p, err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	conn := replay(c, br)
	switch p.Purpose {
	case peer.PurposeRaft:
		m.raftLn.push(conn)
	case peer.PurposeJoin:
		m.joinLn.push(&PeerConn{Conn: conn, Peer: p})
	default:
		m.redisLn.push(&PeerConn{Conn: conn, Peer: p})
	}
}

// refusedInbound logs a refused peer once per address and interval.
func (m *Mux) refusedInbound(addr string, p peer.Peer, err error) {
	key := hostOf(addr)
	attrs := []any{"remote", addr, "reason", err.Error()}
	switch {
	case peer.ValidName(p.Name):
		key += "/" + p.Name
		attrs = append(attrs, "node", p.Name, "purpose", p.Purpose.String())
	case p.Name != "":
		// Not a name at all: shown shortened, and not part of the key,
		// so that garbage cannot open a log line of its own each time.
		attrs = append(attrs, "node", fmt.Sprintf("%.32q", p.Name))
	}
	var mismatch *peer.ClusterMismatchError
	if errors.As(err, &mismatch) {
		attrs = append(attrs, "hint", clusterHint)
	}
	m.opts.Refusals.Refused(key, "refused a peer connection", attrs...)
}

// clusterHint tells the operator what two clusters meeting usually means.
const clusterHint = "a node whose data directory was wiped bootstraps a new cluster when started without -join; " +
	"stop it, empty its data directory and start it again with -join <member>"

// hostOf is the host part of addr (the port of an inbound connection
// changes with every connection).
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// replay returns c with the bytes buffered in br put back in front.
func replay(c net.Conn, br *bufio.Reader) net.Conn {
	buffered, _ := br.Peek(br.Buffered())
	if len(buffered) == 0 {
		return c
	}
	return &peekedConn{Conn: c, peeked: append([]byte(nil), buffered...)}
}

// peekedConn replays sniffed bytes before reading from the socket.
type peekedConn struct {
	net.Conn
	peeked []byte
}

// Read returns the sniffed bytes first.
func (p *peekedConn) Read(b []byte) (int, error) {
	if len(p.peeked) > 0 && len(b) > 0 {
		n := copy(b, p.peeked)
		p.peeked = p.peeked[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// chanListener is a net.Listener fed by the mux.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn, 128), closed: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case <-l.closed:
		c.Close()
		return
	default:
	}
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

// Accept waits for the next routed connection.
func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops the listener.
func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr is the shared listening address.
func (l *chanListener) Addr() net.Addr { return l.addr }

// Dialer opens authenticated peer streams: TCP, TLS when configured, the
// Raft byte, then the handshake for a purpose.
type Dialer struct {
	TLS      *tlsconf.Store
	Peers    *peer.Config
	Refusals *peer.RefusalLog
	// Source is the IP address the streams leave from (nil: the system
	// chooses), so that the other side, a firewall or a fault-injecting
	// proxy sees this node's own address as the source.
	Source net.IP
}

// Dial opens a stream to the node at address for purpose, within timeout.
func (d *Dialer) Dial(address string, purpose peer.Purpose, timeout time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	nd := net.Dialer{Timeout: timeout}
	if d.Source != nil {
		nd.LocalAddr = &net.TCPAddr{IP: d.Source}
	}
	c, err := nd.Dial("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("dial peer %s: %w", address, err)
	}
	if err := d.secure(&c, purpose, deadline); err != nil {
		c.Close()
		d.Refusals.Refused(address, "could not open a peer stream", "purpose", purpose.String(), "err", err)
		return nil, fmt.Errorf("peer %s: %w", address, err)
	}
	return c, nil
}

// secure runs TLS (when configured) and the handshake on *c.
func (d *Dialer) secure(c *net.Conn, purpose peer.Purpose, deadline time.Time) error {
	if d.TLS != nil {
		tc := tls.Client(*c, d.TLS.ClientConfig())
		*c = tc
	}
	_ = (*c).SetDeadline(deadline)
	if _, err := (*c).Write([]byte{raftHeader}); err != nil {
		return fmt.Errorf("write raft header: %w", err)
	}
	if err := peer.Dial(*c, d.Peers, purpose); err != nil {
		return err
	}
	return (*c).SetDeadline(time.Time{})
}

// NewStreamLayer returns hashicorp/raft's StreamLayer over m: peers reach
// this node at advertise; streams to them are opened by d.
func NewStreamLayer(m *Mux, advertise net.Addr, d *Dialer) raft.StreamLayer {
	return &streamLayer{chanListener: m.raftLn, advertise: advertise, dialer: d}
}

// streamLayer is hashicorp/raft's StreamLayer over the mux: inbound streams
// come from the mux, authenticated; outbound ones are opened by the Dialer.
type streamLayer struct {
	*chanListener
	advertise net.Addr
	dialer    *Dialer
}

// Addr is the address peers reach this node on.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial opens an authenticated Raft stream to a peer.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dialer.Dial(string(address), peer.PurposeRaft, timeout)
}
