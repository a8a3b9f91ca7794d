package redisconn

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/redraft/redraft/internal/resp"
)

func TestSendStringsMatchesWriteCommand(t *testing.T) {
	var a, b bytes.Buffer
	c := &Conn{bw: bufio.NewWriter(&a)}
	c.SendStrings("SELECT", "3")
	c.bw.Flush()
	w := bufio.NewWriter(&b)
	resp.WriteCommand(w, [][]byte{[]byte("SELECT"), []byte("3")})
	w.Flush()
	if a.String() != b.String() {
		t.Errorf("SendStrings %q != WriteCommand %q", a.String(), b.String())
	}
}

func TestSelectDB(t *testing.T) {
	var buf bytes.Buffer
	c := &Conn{bw: bufio.NewWriter(&buf)}
	if c.SelectDB(0) {
		t.Error("SELECT 0 sent on a fresh connection")
	}
	if !c.SelectDB(3) || c.db != 3 {
		t.Error("SELECT 3 not sent")
	}
	if c.SelectDB(3) {
		t.Error("SELECT 3 sent twice")
	}
	c.ForgetDB()
	if !c.SelectDB(3) {
		t.Error("SELECT not sent after ForgetDB")
	}
	c.bw.Flush()
	if buf.String() != "*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n" {
		t.Errorf("wrote %q", buf.String())
	}
}
