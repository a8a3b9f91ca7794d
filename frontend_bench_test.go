package main

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/resp"
)

// BenchmarkFrontEndReadsRESP2 measures a RESP2 client's pipelined reads
// through the front end (16 GETs and a PING per round trip), allocations
// included: the RESP2 path must not pay for RESP3 and tracking.
func BenchmarkFrontEndReadsRESP2(b *testing.B) {
	s, addr := newTestFrontEnd(b, nil)
	c, err := s.child.Dial()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Do("SET", "k", "v"); err != nil {
		b.Fatal(err)
	}
	c.Close()
	roundTrips(b, addr, strings.Repeat("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 16)+"*1\r\n$4\r\nPING\r\n", 17)
}

// BenchmarkFrontEndWritesRESP2 measures a RESP2 client's pipelined writes
// (16 SETs per round trip) through a one-node Raft log, allocations
// included.
func BenchmarkFrontEndWritesRESP2(b *testing.B) {
	_, addr, _ := newTestNode(b, nil)
	roundTrips(b, addr, strings.Repeat("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", 16), 16)
}

// roundTrips sends req to addr b.N times and reads its replies (there are
// replies of them) after each.
func roundTrips(b *testing.B, addr, req string, replies int) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := nc.Write([]byte(req)); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < replies; j++ {
			if buf, err = resp.ReadReply(br, buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
