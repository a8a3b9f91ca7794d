package resp

import "bufio"

// Short forms for the replies redraft writes most, in RESP2 (the same bytes
// in RESP3 for these types).

// Error formats an error reply.
func Error(msg string) []byte { return AppendError(nil, msg) }

// Integer formats an integer reply.
func Integer(n int64) []byte { return AppendInt(nil, n) }

// Status formats a status reply.
func Status(s string) []byte { return AppendStatus(nil, s) }

// Bulk formats a bulk reply.
func Bulk(s string) []byte { return AppendBulkString(nil, s) }

// ArrayHeader formats the header of an array of n elements.
func ArrayHeader(n int) []byte { return AppendArray(nil, n) }

// Bool formats a boolean as Redis's RESP2 integer 1 or 0.
func Bool(b bool) []byte { return AppendBool(nil, Proto2, b) }

// Fixed replies.
var (
	OK        = []byte("+OK\r\n")
	NullBulk  = []byte("$-1\r\n")
	NullArray = []byte("*-1\r\n")
	// Null3 is RESP3's one null, where RESP2 has NullBulk and NullArray.
	Null3 = []byte("_\r\n")
)

// NullBulkIn is NullBulk in protocol p.
func NullBulkIn(p Proto) []byte {
	if p >= Proto3 {
		return Null3
	}
	return NullBulk
}

// NullArrayIn is NullArray in protocol p.
func NullArrayIn(p Proto) []byte {
	if p >= Proto3 {
		return Null3
	}
	return NullArray
}

// AsInt returns a parsed integer value, 0 for anything else.
func AsInt(v any) int64 {
	n, _ := v.(int64)
	return n
}

// WriteCommand encodes args as a RESP array of bulk strings.
func WriteCommand(w *bufio.Writer, args [][]byte) {
	_, _ = w.Write(AppendCommand(w.AvailableBuffer(), args))
}

// WriteStrings encodes args, given as strings, like WriteCommand.
func WriteStrings(w *bufio.Writer, args ...string) {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	WriteCommand(w, b)
}
