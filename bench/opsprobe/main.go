// Command opsprobe is the client side of bench/ops.sh and bench/backup.sh:
// a pipelined loader, a one-at-a-time write probe that times writes around
// a RAFTSNAPSHOT (or another command, -cmd; its duration is still reported
// as snapshot_seconds), and an idle-connection opener that reads a
// process's RSS before and after.
// It speaks RESP over plain TCP (standard library only).
//
//	opsprobe load  -addr 127.0.0.1:17610 -n 1000000 -d 100
//	opsprobe stall -addr 127.0.0.1:17610 -before 10s -after 5s
//	opsprobe stall -addr 127.0.0.1:17610 -cmd "RAFTBACKUP /tmp/b.rdb"
//	opsprobe idle  -addr 127.0.0.1:17620 -n 10000 -pid 1234
//
// Results are printed as key=value lines for the script to tabulate.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: opsprobe load|stall|idle [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "load":
		err = load(os.Args[2:])
	case "stall":
		err = stall(os.Args[2:])
	case "idle":
		err = idle(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "opsprobe:", err)
		os.Exit(1)
	}
}

// conn is a minimal RESP client.
type conn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10)}, nil
}

func (c *conn) send(args ...string) {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n%s\r\n", len(a), a)
	}
}

// reply reads one reply; errors from the server come back as a Go error
// wrapped in serverError.
func (c *conn) reply() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, serverError(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, _ := strconv.Atoi(line[1:])
		out := make([]any, 0, max(n, 0))
		for i := 0; i < n; i++ {
			v, err := c.reply()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

type serverError string

func (e serverError) Error() string { return string(e) }

func (c *conn) do(timeout time.Duration, args ...string) (any, error) {
	_ = c.c.SetDeadline(time.Now().Add(timeout))
	c.send(args...)
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	return c.reply()
}

func value(size int, seed int) string {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'a' + byte((i*7+seed)%26)
	}
	return string(b)
}

// load writes keys key:000000000000 .. key:N-1 with pipelined SETs over
// several connections.
func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:17610", "node address")
	n := fs.Int("n", 1000000, "keys")
	size := fs.Int("d", 100, "value bytes")
	conns := fs.Int("c", 8, "connections")
	pipe := fs.Int("P", 256, "commands per pipeline")
	_ = fs.Parse(args)
	start := time.Now()
	var next, errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func(seed int) {
			defer wg.Done()
			c, err := dial(*addr)
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			defer c.c.Close()
			v := value(*size, seed)
			for {
				from := int(next.Add(int64(*pipe))) - *pipe
				if from >= *n {
					return
				}
				to := min(from+*pipe, *n)
				for k := from; k < to; k++ {
					c.send("SET", fmt.Sprintf("key:%012d", k), v)
				}
				_ = c.c.SetDeadline(time.Now().Add(60 * time.Second))
				if err := c.w.Flush(); err != nil {
					errs.Add(int64(to - from))
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				for k := from; k < to; k++ {
					if _, err := c.reply(); err != nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						var se serverError
						if !errors.As(err, &se) {
							return
						}
					}
				}
			}
		}(i)
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("load_keys=%d\nload_seconds=%.2f\nload_rate=%.0f\nload_errors=%d\n", *n, el.Seconds(), float64(*n)/el.Seconds(), errs.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Printf("load_first_error=%q\n", e)
	}
	return nil
}

type sample struct {
	start time.Time
	lat   time.Duration
	err   bool
}

// stall runs one SET at a time at a fixed interval, issues RAFTSNAPSHOT on
// another connection after -before, and keeps writing for -after once the
// snapshot returns. It reports write latency before and during the snapshot.
func stall(args []string) error {
	fs := flag.NewFlagSet("stall", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:17610", "leader address")
	before := fs.Duration("before", 10*time.Second, "writes before the snapshot")
	after := fs.Duration("after", 5*time.Second, "writes after the snapshot returns")
	interval := fs.Duration("interval", 5*time.Millisecond, "time between write starts")
	size := fs.Int("d", 100, "value bytes")
	command := fs.String("cmd", "RAFTSNAPSHOT", "the command timed, split at spaces (e.g. \"RAFTBACKUP /tmp/b.rdb\")")
	_ = fs.Parse(args)
	cmdArgs := strings.Fields(*command)
	if len(cmdArgs) == 0 {
		return errors.New("stall: -cmd is empty")
	}

	wc, err := dial(*addr)
	if err != nil {
		return err
	}
	sc, err := dial(*addr)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var samples []sample
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		v := value(*size, 3)
		next := time.Now()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			next = next.Add(*interval)
			if time.Until(next) < -time.Second { // do not burst to catch up after a stall
				next = time.Now()
			}
			t0 := time.Now()
			_, err := wc.do(30*time.Second, "SET", fmt.Sprintf("probe:%d", i%100000), v)
			s := sample{start: t0, lat: time.Since(t0), err: err != nil}
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
			if err != nil {
				var se serverError
				if !errors.As(err, &se) {
					fmt.Fprintln(os.Stderr, "probe connection:", err)
					return
				}
			}
		}
	}()
	time.Sleep(*before)
	snapStart := time.Now()
	_, snapErr := sc.do(10*time.Minute, cmdArgs...)
	snapEnd := time.Now()
	time.Sleep(*after)
	close(stop)
	<-done

	mu.Lock()
	defer mu.Unlock()
	var pre, during, post []sample
	for _, s := range samples {
		end := s.start.Add(s.lat)
		switch {
		case end.Before(snapStart):
			pre = append(pre, s)
		case s.start.Before(snapEnd):
			during = append(during, s)
		default:
			post = append(post, s)
		}
	}
	fmt.Printf("snapshot_seconds=%.3f\n", snapEnd.Sub(snapStart).Seconds())
	if snapErr != nil {
		fmt.Printf("snapshot_error=%q\n", snapErr.Error())
	}
	report := func(name string, ss []sample) {
		lats := make([]float64, 0, len(ss))
		errs := 0
		var worst sample
		for _, s := range ss {
			lats = append(lats, float64(s.lat.Microseconds())/1000)
			if s.err {
				errs++
			}
			if s.lat > worst.lat {
				worst = s
			}
		}
		sort.Float64s(lats)
		q := func(p float64) float64 {
			if len(lats) == 0 {
				return 0
			}
			return lats[min(len(lats)-1, int(p*float64(len(lats))))]
		}
		fmt.Printf("%s_writes=%d\n%s_errors=%d\n%s_p50_ms=%.2f\n%s_p99_ms=%.2f\n%s_max_ms=%.2f\n",
			name, len(ss), name, errs, name, q(0.50), name, q(0.99), name, q(1))
		if len(ss) > 0 {
			fmt.Printf("%s_max_at_s=%.3f\n", name, worst.start.Sub(snapStart).Seconds())
		}
		n100 := 0
		for _, l := range lats {
			if l > 100 {
				n100++
			}
		}
		fmt.Printf("%s_over_100ms=%d\n", name, n100)
	}
	report("before", pre)
	report("during", during)
	report("after", post)
	// The slowest writes overall, with their start relative to the snapshot.
	sorted := append([]sample(nil), samples...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].lat > sorted[j].lat })
	var top []string
	for _, s := range sorted[:min(5, len(sorted))] {
		top = append(top, fmt.Sprintf("%.1fms@%+.2fs", float64(s.lat.Microseconds())/1000, s.start.Sub(snapStart).Seconds()))
	}
	fmt.Printf("slowest=%s\n", strings.Join(top, ","))
	return nil
}

func rssKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				return strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	return 0, errors.New("no VmRSS")
}

// idle opens -n connections, sends PING on each, and reports the RSS of
// -pid before, after they are open and settled, and after they close.
func idle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:17620", "node address")
	n := fs.Int("n", 10000, "connections")
	pid := fs.Int("pid", 0, "process whose RSS to read")
	settle := fs.Duration("settle", 5*time.Second, "wait before reading RSS")
	_ = fs.Parse(args)

	before, err := rssKB(*pid)
	if err != nil {
		return err
	}
	start := time.Now()
	conns := make([]net.Conn, 0, *n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 64)
	failed := 0
	var firstErr error
	for len(conns)+failed < *n {
		c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err = c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err == nil {
				var m int
				m, err = c.Read(buf)
				if err == nil && !strings.HasPrefix(string(buf[:m]), "+PONG") {
					err = fmt.Errorf("reply %q", buf[:m])
				}
			}
			if err != nil {
				c.Close()
			}
		}
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		conns = append(conns, c)
	}
	opened := time.Since(start)
	time.Sleep(*settle)
	after, err := rssKB(*pid)
	if err != nil {
		return err
	}
	// The node still serves a new client while holding them.
	alive := "no"
	if c, err := dial(*addr); err == nil {
		if v, err := c.do(5*time.Second, "PING"); err == nil && v == "PONG" {
			alive = "yes"
		}
		c.c.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	held := len(conns)
	conns = nil
	time.Sleep(*settle)
	closed, _ := rssKB(*pid)
	fmt.Printf("idle_opened=%d\nidle_failed=%d\nidle_open_seconds=%.2f\n", held, failed, opened.Seconds())
	if firstErr != nil {
		fmt.Printf("idle_first_error=%q\n", firstErr.Error())
	}
	fmt.Printf("idle_rss_before_kb=%d\nidle_rss_open_kb=%d\nidle_rss_closed_kb=%d\nidle_still_serves=%s\n", before, after, closed, alive)
	if held > 0 {
		fmt.Printf("idle_mb_per_10k=%.1f\nidle_kb_per_conn=%.2f\n",
			float64(after-before)/1024*10000/float64(held), float64(after-before)/float64(held))
	}
	return nil
}
