// Package mux shares one listening port between Redis clients and Raft
// peers: the first byte of each connection decides where it goes.
package mux

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// raftHeader is the first byte a peer sends on a Raft stream. It is never the
// first byte of a RESP request ('*') or of an inline command (printable text).
const raftHeader byte = 0x01

// sniffTimeout bounds how long a new connection may stay silent before it is
// treated as a Redis client (clients from connection pools often dial first
// and speak later; Raft peers always speak at once).
const sniffTimeout = 2 * time.Second

// Mux splits one listening socket into a Raft stream listener and a RESP
// client listener by the first byte of each connection. Each connection is
// sniffed on its own goroutine, so a slow client never blocks accept.
type Mux struct {
	ln      net.Listener
	log     *slog.Logger
	raftLn  *chanListener
	redisLn *chanListener
}

// New wraps ln. Call Serve to start accepting.
func New(ln net.Listener, log *slog.Logger) *Mux {
	return &Mux{
		ln:      ln,
		log:     log,
		raftLn:  newChanListener(ln.Addr()),
		redisLn: newChanListener(ln.Addr()),
	}
}

// Serve accepts until the listener closes.
func (m *Mux) Serve() {
	defer m.raftLn.Close()
	defer m.redisLn.Close()
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

// Clients is the listener of Redis client connections.
func (m *Mux) Clients() net.Listener { return m.redisLn }

// Raft is the listener of Raft streams (header already consumed).
func (m *Mux) Raft() net.Listener { return m.raftLn }

// route reads the first byte and hands the connection on, replaying
// whatever was read past the header.
func (m *Mux) route(c net.Conn) {
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	first, err := br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	var ne net.Error
	switch {
	case err == nil && first[0] == raftHeader:
		_, _ = br.ReadByte()
		m.raftLn.push(replay(c, br))
	case err == nil || (errors.As(err, &ne) && ne.Timeout()):
		m.redisLn.push(replay(c, br))
	default:
		c.Close()
	}
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

// NewStreamLayer returns hashicorp/raft's StreamLayer over m: peers reach
// this node at advertise.
func NewStreamLayer(m *Mux, advertise net.Addr) raft.StreamLayer {
	return &streamLayer{chanListener: m.raftLn, advertise: advertise}
}

// streamLayer is hashicorp/raft's StreamLayer over the mux: inbound streams
// come from the mux, outbound ones are dialled and prefixed with raftHeader.
type streamLayer struct {
	*chanListener
	advertise net.Addr
}

// Addr is the address peers reach this node on.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial opens a Raft stream to a peer.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, fmt.Errorf("dial peer %s: %w", address, err)
	}
	if _, err := c.Write([]byte{raftHeader}); err != nil {
		c.Close()
		return nil, fmt.Errorf("write raft header to %s: %w", address, err)
	}
	return c, nil
}
