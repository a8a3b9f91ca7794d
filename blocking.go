package main

import (
	"context"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/redcon"
)

// Blocking commands never block the state machine. The client waits in the
// proxy; the proxy proposes the command's non-blocking form through the log
// (or reads, for XREAD) when it arrives and again each time a write touches
// one of its keys, until it gets a value, times out, or the node stops
// leading. Waiters on a key are woken in arrival order.

// blockingPlan is a blocking call turned into its non-blocking form.
type blockingPlan struct {
	nb       [][]byte      // the non-blocking command
	read     bool          // nb is a read (XREAD), not a write
	keys     []dbKey       // keys whose writes wake the waiter
	timeout  time.Duration // 0 waits forever
	nilReply []byte        // reply on timeout
}

// popScript pops from the first non-empty key, as BLPOP/BRPOP/BZPOPMIN/
// BZPOPMAX would: ARGV[1] is LPOP, RPOP, ZPOPMIN or ZPOPMAX.
const popScript = `local zset = string.sub(ARGV[1], 1, 1) == 'Z'
for _, k in ipairs(KEYS) do
  local t = redis.call('TYPE', k).ok
  if t ~= 'none' then
    if (zset and t ~= 'zset') or (not zset and t ~= 'list') then
      return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
    end
    local r = redis.call(ARGV[1], k)
    if zset then return {k, r[1], r[2]} end
    return {k, r}
  end
end
return false`

// planBlocking builds the plan for a blocking call, or an error reply.
func (s *server) planBlocking(ctx context.Context, info *commandInfo, db int, args [][]byte) (*blockingPlan, []byte) {
	p := &blockingPlan{nilReply: []byte("*-1\r\n")}
	keysOf := func(keys [][]byte) {
		for _, k := range keys {
			p.keys = append(p.keys, dbKey{db, string(k)})
		}
	}
	var err []byte
	switch info.name {
	case "blpop", "brpop", "bzpopmin", "bzpopmax":
		p.timeout, err = parseTimeout(args[len(args)-1])
		keys := args[1 : len(args)-1]
		keysOf(keys)
		op := map[string]string{"blpop": "LPOP", "brpop": "RPOP", "bzpopmin": "ZPOPMIN", "bzpopmax": "ZPOPMAX"}[info.name]
		p.nb = append(append([][]byte{[]byte("EVAL"), []byte(popScript), []byte(strconv.Itoa(len(keys)))}, keys...), []byte(op))
	case "brpoplpush":
		p.timeout, err = parseTimeout(args[3])
		keysOf(args[1:3])
		p.nb = [][]byte{[]byte("RPOPLPUSH"), args[1], args[2]}
		p.nilReply = respNullBulk
	case "blmove":
		p.timeout, err = parseTimeout(args[5])
		keysOf(args[1:3])
		p.nb = [][]byte{[]byte("LMOVE"), args[1], args[2], args[3], args[4]}
		p.nilReply = respNullBulk
	case "blmpop", "bzmpop":
		p.timeout, err = parseTimeout(args[1])
		keysOf(numKeysAt(args, 2))
		p.nb = append([][]byte{[]byte(strings.TrimPrefix(strings.ToUpper(info.name), "B"))}, args[2:]...)
	case "xread", "xreadgroup":
		return s.planXRead(ctx, info, db, args)
	default:
		return nil, respError("ERR blocking command not supported by redraft")
	}
	return p, err
}

// planXRead drops BLOCK from XREAD/XREADGROUP and pins "$" to the stream's
// current last ID.
func (s *server) planXRead(ctx context.Context, info *commandInfo, db int, args [][]byte) (*blockingPlan, []byte) {
	p := &blockingPlan{nilReply: []byte("*-1\r\n"), read: info.name == "xread"}
	var nb [][]byte
	streamsAt := -1
	for i := 0; i < len(args); i++ {
		a := strings.ToLower(string(args[i]))
		if a == "block" && i+1 < len(args) && streamsAt < 0 {
			ms, err := strconv.ParseInt(string(args[i+1]), 10, 64)
			if err != nil {
				return nil, respError("ERR timeout is not an integer or out of range")
			}
			if ms < 0 {
				return nil, respError("ERR timeout is negative")
			}
			p.timeout = time.Duration(ms) * time.Millisecond
			i++
			continue
		}
		if a == "streams" && streamsAt < 0 {
			streamsAt = len(nb)
		}
		nb = append(nb, args[i])
	}
	if streamsAt < 0 || (len(nb)-streamsAt-1)%2 != 0 {
		return nil, respError("ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.")
	}
	n := (len(nb) - streamsAt - 1) / 2
	keys, ids := nb[streamsAt+1:streamsAt+1+n], nb[streamsAt+1+n:]
	for i, k := range keys {
		p.keys = append(p.keys, dbKey{db, string(k)})
		if string(ids[i]) == "$" {
			ids[i] = []byte(s.lastStreamID(ctx, db, k))
		}
	}
	p.nb = nb
	return p, nil
}

// lastStreamID is a stream's last generated ID, "0-0" if it has none.
func (s *server) lastStreamID(ctx context.Context, db int, key []byte) string {
	raw := s.readSteps(ctx, db, []readStep{{args: [][]byte{[]byte("XINFO"), []byte("STREAM"), key}}}, false)[0]
	v, err := parseReply(raw)
	fields, ok := v.([]any)
	if err != nil || !ok {
		return "0-0"
	}
	for i := 0; i+1 < len(fields); i += 2 {
		if asString(fields[i]) == "last-generated-id" {
			return asString(fields[i+1])
		}
	}
	return "0-0"
}

// parseTimeout reads a blocking timeout in seconds (a float, as Redis 7).
func parseTimeout(arg []byte) (time.Duration, []byte) {
	f, err := strconv.ParseFloat(string(arg), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, respError("ERR timeout is not a float or out of range")
	}
	if f < 0 {
		return 0, respError("ERR timeout is negative")
	}
	return time.Duration(f * float64(time.Second)), nil
}

// block serves one blocking call. gone is closed when the client goes away.
func (s *server) block(cl *client, info *commandInfo, args [][]byte, gone <-chan struct{}) []byte {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-gone:
			cancel()
		case <-ctx.Done():
		}
	}()
	p, errReply := s.planBlocking(ctx, info, cl.db, args)
	if errReply != nil {
		return errReply
	}
	w := s.waiters.add(p.keys)
	defer s.waiters.remove(w)
	var deadline <-chan time.Time
	if p.timeout > 0 {
		t := time.NewTimer(p.timeout)
		defer t.Stop()
		deadline = t.C
	}
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	for {
		reply := s.tryNonBlocking(ctx, cl, p)
		if !isNilReply(reply) {
			if !replyIsError(reply) {
				s.waiters.passOn(w) // more may be waiting on these keys
			}
			return reply
		}
		for woken := false; !woken; {
			select {
			case <-w.wake:
				woken = true
			case <-deadline:
				return p.nilReply
			case <-ctx.Done():
				return p.nilReply
			case <-check.C:
				if !p.read || s.consistency != "low" {
					if err := s.node.waitLeaderReady(ctx); err != nil {
						return s.node.notLeaderError()
					}
				}
			}
		}
	}
}

// tryNonBlocking runs the non-blocking form once.
func (s *server) tryNonBlocking(ctx context.Context, cl *client, p *blockingPlan) []byte {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if p.read {
		return s.readSteps(rctx, cl.db, []readStep{{args: p.nb}}, true)[0]
	}
	return s.propose(rctx, []command{{DB: cl.db, Args: p.nb}})[0]
}

func isNilReply(raw []byte) bool {
	return string(raw) == "*-1\r\n" || string(raw) == "$-1\r\n"
}

// waiter is one blocked client.
type waiter struct {
	keys []dbKey
	wake chan struct{}
}

// waiterSet queues blocked clients per key, in arrival order.
type waiterSet struct {
	mu    sync.Mutex
	byKey map[dbKey][]*waiter
	count int
}

func newWaiterSet() *waiterSet { return &waiterSet{byKey: make(map[dbKey][]*waiter)} }

func (ws *waiterSet) add(keys []dbKey) *waiter {
	w := &waiter{keys: keys, wake: make(chan struct{}, 1)}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, k := range keys {
		ws.byKey[k] = append(ws.byKey[k], w)
	}
	ws.count++
	return w
}

func (ws *waiterSet) remove(w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, k := range w.keys {
		q := ws.byKey[k]
		for i, x := range q {
			if x == w {
				q = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		if len(q) == 0 {
			delete(ws.byKey, k)
		} else {
			ws.byKey[k] = q
		}
	}
	ws.count--
}

// active reports whether anyone waits (cheap check for the apply path).
func (ws *waiterSet) active() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.count > 0
}

// touched wakes the first waiter on each key.
func (ws *waiterSet) touched(keys []dbKey) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, k := range keys {
		if k.Key == anyKey {
			// SWAPDB: every key of the database may have changed.
			for wk, q := range ws.byKey {
				if wk.DB == k.DB && len(q) > 0 {
					wakeUp(q[0])
				}
			}
			continue
		}
		if q := ws.byKey[k]; len(q) > 0 {
			wakeUp(q[0])
		}
	}
}

// anyKey in a touched key stands for every key of its database.
const anyKey = "\x00redraft:any"

func wakeUp(w *waiter) {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// passOn wakes the next waiter on w's keys after w got its value.
func (ws *waiterSet) passOn(w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, k := range w.keys {
		for _, x := range ws.byKey[k] {
			if x != w {
				select {
				case x.wake <- struct{}{}:
				default:
				}
				break
			}
		}
	}
}

// detachForBlocking takes conn out of redcon's loop so that the proxy can
// notice the client leaving while it waits. From then on the proxy reads the
// connection itself and serves every command through handle.
func (s *server) detachForBlocking(conn redcon.Conn, pending []redcon.Command) {
	cl := conn.Context().(*client)
	cl.detached = true
	dc := conn.Detach()
	cmds := make(chan redcon.Command, 64)
	gone := make(chan struct{})
	cl.gone, cl.cmds = gone, cmds
	go func() {
		defer close(gone)
		defer close(cmds)
		for {
			c, err := dc.ReadCommand()
			if err != nil {
				return
			}
			cmds <- copyCommand(c)
		}
	}()
	go func() {
		defer func() {
			if !cl.handedOff {
				dc.Close()
			}
		}()
		queue := pending
		for {
			if len(queue) == 0 {
				c, ok := <-cmds
				if !ok {
					s.closeClient(cl)
					return
				}
				queue = []redcon.Command{c}
			}
			closeNow := s.process(dc, cl, queue)
			if cl.handedOff {
				return // the Pub/Sub relay owns the connection now
			}
			if dc.Flush() != nil || closeNow {
				return
			}
			queue = nil
		}
	}()
}

// copyCommand detaches a command from the reader's buffer.
func copyCommand(c redcon.Command) redcon.Command {
	args := make([][]byte, len(c.Args))
	for i, a := range c.Args {
		args[i] = append([]byte(nil), a...)
	}
	return redcon.Command{Args: args}
}
