// Package redisconn is a pipelining RESP client that hands back every reply
// as its raw bytes, so that replies can reach clients byte for byte (general
// clients such as redigo fold nil arrays and nil bulks together). redraft
// uses it for its connections to the child redis-server and, with
// --follower-proxy, to the leader.
package redisconn

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/redraft/redraft/internal/resp"
)

// bufferSize is the read and write buffer of a connection.
const bufferSize = 64 << 10

// Conn is one pipelining connection. It is not safe for concurrent use.
type Conn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	db int // database currently selected
}

// New wraps an established connection (database 0 selected).
func New(nc net.Conn) *Conn {
	return &Conn{nc: nc, br: bufio.NewReaderSize(nc, bufferSize), bw: bufio.NewWriterSize(nc, bufferSize)}
}

// Dial connects to network/address ("unix" and a socket path for the
// child, "tcp" and host:port for a leader).
func Dial(network, address string, timeout time.Duration) (*Conn, error) {
	nc, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	return New(nc), nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// SetDeadline bounds every read and write until it is reset with the zero
// time.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// Send buffers one command.
func (c *Conn) Send(args [][]byte) { resp.WriteCommand(c.bw, args) }

// SendStrings buffers one command given as strings.
func (c *Conn) SendStrings(args ...string) { resp.WriteStrings(c.bw, args...) }

// SelectDB buffers a SELECT when db differs from the connection's current
// database, and returns whether a reply must be read for it.
func (c *Conn) SelectDB(db int) bool {
	if c.db == db {
		return false
	}
	c.SendStrings("SELECT", strconv.Itoa(db))
	c.db = db
	return true
}

// ForgetDB records that the selected database is unknown (after a
// transaction that may have run SELECT), so the next SelectDB sends one.
func (c *Conn) ForgetDB() { c.db = -1 }

// SelectNow switches to db at once (SELECT sent and answered) when the
// connection is elsewhere.
func (c *Conn) SelectNow(db int) error {
	if !c.SelectDB(db) {
		return nil
	}
	if err := c.Flush(); err != nil {
		return err
	}
	_, err := c.ReadReply()
	return err
}

// Flush writes the buffered commands.
func (c *Conn) Flush() error {
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("write to redis-server: %w", err)
	}
	return nil
}

// Do sends one command and returns its raw reply.
func (c *Conn) Do(args ...string) ([]byte, error) {
	c.SendStrings(args...)
	if err := c.Flush(); err != nil {
		return nil, err
	}
	return c.ReadReply()
}

// ReadReply reads one complete reply and returns a copy of its raw bytes.
func (c *Conn) ReadReply() ([]byte, error) {
	out, err := resp.ReadReply(c.br, nil)
	if err != nil {
		return nil, fmt.Errorf("read from redis-server: %w", err)
	}
	return out, nil
}

// Pool keeps idle connections to one address.
type Pool struct {
	network, address string
	idle             chan *Conn
	setup            []string // a command each new connection runs first
}

// NewPool keeps up to size idle connections to network/address.
func NewPool(network, address string, size int) *Pool {
	return &Pool{network: network, address: address, idle: make(chan *Conn, size)}
}

// NewPoolWith is NewPool for connections that each run setup (such as
// HELLO 3) when they are dialled; an error reply fails the dial.
func NewPoolWith(network, address string, size int, setup ...string) *Pool {
	p := NewPool(network, address, size)
	p.setup = setup
	return p
}

// Get returns an idle connection or dials a new one.
func (p *Pool) Get() (*Conn, error) {
	select {
	case c := <-p.idle:
		return c, nil
	default:
		return p.dial()
	}
}

// dial opens a new connection and runs the setup command on it.
func (p *Pool) dial() (*Conn, error) {
	c, err := Dial(p.network, p.address, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if err := runSetup(c, p.setup); err != nil {
		return nil, err
	}
	return c, nil
}

// runSetup runs setup (if any) on a new connection; an error, or an error
// reply, closes c.
func runSetup(c *Conn, setup []string) error {
	if len(setup) == 0 {
		return nil
	}
	raw, err := c.Do(setup...)
	if err == nil && resp.ReplyIsError(raw) {
		err = fmt.Errorf("%s: %s", setup[0], bytes.TrimSpace(raw))
	}
	if err != nil {
		c.Close()
		return err
	}
	return nil
}

// Put returns a healthy connection to the pool (or closes it when full).
func (p *Pool) Put(c *Conn) {
	select {
	case p.idle <- c:
	default:
		c.Close()
	}
}

// Drain closes every idle connection (they point at a child that was
// replaced).
func (p *Pool) Drain() {
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return
		}
	}
}

// Step is one command of a pipelined run: Args is sent unless Reply is
// already set (a reply known without asking); MapReply, if set, rewrites
// the server's reply.
type Step struct {
	Args     [][]byte
	MapReply func([]byte) []byte
	Reply    []byte
}

// Run pipelines steps in database db and returns one reply per step.
func (c *Conn) Run(db int, steps []Step) ([][]byte, error) {
	selected := c.SelectDB(db)
	for _, st := range steps {
		if st.Reply == nil {
			c.Send(st.Args)
		}
	}
	if err := c.Flush(); err != nil {
		return nil, err
	}
	if selected {
		if _, err := c.ReadReply(); err != nil {
			return nil, err
		}
	}
	out := make([][]byte, len(steps))
	for i, st := range steps {
		if st.Reply != nil {
			out[i] = st.Reply
			continue
		}
		raw, err := c.ReadReply()
		if err != nil {
			return nil, err
		}
		if st.MapReply != nil {
			raw = st.MapReply(raw)
		}
		out[i] = raw
	}
	return out, nil
}
