// Package command reads the child redis-server's own COMMAND metadata —
// name, arity, flags and key positions of every command and subcommand —
// and answers the questions every layer asks about a command: which row
// it is, whether its argument count is right, and which of its arguments
// are keys.
package command

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/redraft/redraft/internal/resp"
)

// Info is one command or subcommand as COMMAND describes it.
type Info struct {
	Name        string // lower case; subcommands as "config|get"
	Arity       int
	First, Last int // key positions (Last < 0 counts from the end)
	Step        int
	Write       bool // flagged "write"
	ReadOnly    bool // flagged "readonly"
	Blocking    bool // flagged "blocking"
	DenyOOM     bool // flagged "denyoom"
	NoMulti     bool // flagged "no_multi": refused inside MULTI
	Movable     bool // flagged "movablekeys"
	Unmonitored bool // flagged "admin": MONITOR does not show it (skip_monitor marks the script commands, which Redis shows itself)
	Parent      *Info
	Subs        map[string]*Info
}

// Table is every command the child knows, by lower-case name.
type Table struct {
	byName map[string]*Info
}

// NewTable builds a table from a parsed COMMAND reply (resp.Parse).
func NewTable(reply any) (*Table, error) {
	list, ok := reply.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected COMMAND reply")
	}
	t := &Table{byName: make(map[string]*Info, len(list))}
	for _, item := range list {
		if info := parseInfo(item, nil); info != nil {
			t.byName[info.Name] = info
		}
	}
	return t, nil
}

// Add registers a command the child does not know (redraft's own).
func (t *Table) Add(info *Info) { t.byName[info.Name] = info }

// All calls fn for every top-level command.
func (t *Table) All(fn func(*Info)) {
	for _, info := range t.byName {
		fn(info)
	}
}

// parseInfo decodes one COMMAND entry and its subcommands.
func parseInfo(item any, parent *Info) *Info {
	fields, ok := item.([]any)
	if !ok || len(fields) < 6 {
		return nil
	}
	info := &Info{Name: strings.ToLower(resp.AsString(fields[0])), Parent: parent}
	info.Arity = int(resp.AsInt(fields[1]))
	info.First, info.Last, info.Step = int(resp.AsInt(fields[3])), int(resp.AsInt(fields[4])), int(resp.AsInt(fields[5]))
	if flags, ok := fields[2].([]any); ok {
		for _, f := range flags {
			switch resp.AsString(f) {
			case "write":
				info.Write = true
			case "readonly":
				info.ReadOnly = true
			case "movablekeys":
				info.Movable = true
			case "blocking":
				info.Blocking = true
			case "denyoom":
				info.DenyOOM = true
			case "no_multi":
				info.NoMulti = true
			case "admin":
				info.Unmonitored = true
			}
		}
	}
	if len(fields) > 9 {
		if subs, ok := fields[9].([]any); ok && len(subs) > 0 {
			info.Subs = make(map[string]*Info, len(subs))
			for _, s := range subs {
				if sub := parseInfo(s, info); sub != nil {
					info.Subs[sub.Name] = sub
				}
			}
		}
	}
	return info
}

// Lookup finds the row for args, resolving container commands to their
// subcommand. It returns nil for unknown commands.
func (t *Table) Lookup(args [][]byte) *Info {
	if len(args) == 0 {
		return nil
	}
	var buf [32]byte
	var info *Info
	if len(args[0]) <= len(buf) {
		// Lower-case into a stack buffer: the map lookup with string(b)
		// does not allocate.
		b := buf[:len(args[0])]
		for i, c := range args[0] {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		info = t.byName[string(b)]
	}
	if info == nil || info.Subs == nil || len(args) < 2 {
		return info
	}
	if sub := info.Subs[info.Name+"|"+Lower(args[1])]; sub != nil {
		return sub
	}
	return info
}

// Lower returns b in lower case as a string.
func Lower(b []byte) string {
	for _, c := range b {
		if c >= 'A' && c <= 'Z' {
			return string(bytes.ToLower(b))
		}
	}
	return string(b)
}

// ArityOK checks the argument count the way Redis does.
func (c *Info) ArityOK(n int) bool {
	if c.Arity >= 0 {
		return n == c.Arity
	}
	return n >= -c.Arity
}

// ArityError is Redis's wording for a wrong argument count.
func (c *Info) ArityError() string {
	return fmt.Sprintf("ERR wrong number of arguments for '%s' command", c.Name)
}

// DisplayName is the name as Redis prints it in errors ("config set").
func (c *Info) DisplayName() string { return strings.ReplaceAll(c.Name, "|", " ") }

// UnknownCommandError is Redis's wording for an unknown command: the name
// and at most 128 bytes of arguments, with CR and LF turned into spaces so
// the error stays one line.
func UnknownCommandError(args [][]byte) string {
	var b strings.Builder
	for _, a := range args[1:] {
		room := 128 - b.Len()
		if room <= 0 {
			break
		}
		if len(a) > room {
			a = a[:room]
		}
		fmt.Fprintf(&b, "'%s' ", a)
	}
	name := args[0]
	if len(name) > 128 {
		name = name[:128]
	}
	msg := fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", name, b.String())
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
}

// XReadStreamsAt returns the position of the STREAMS keyword of XREAD or
// XREADGROUP (skipping the options before it) and whether BLOCK was given.
func XReadStreamsAt(args [][]byte) (streams int, block bool) {
	for i := 1; i < len(args); i++ {
		switch strings.ToLower(string(args[i])) {
		case "streams":
			return i, block
		case "block":
			block = true
			i++
		case "count":
			i++
		case "group":
			i += 2
		}
	}
	return -1, block
}

// IsBlockingCall reports whether this invocation would block in Redis.
func IsBlockingCall(info *Info, args [][]byte) bool {
	if !info.Blocking {
		return false
	}
	switch info.Name {
	case "xread", "xreadgroup":
		_, block := XReadStreamsAt(args)
		return block
	}
	return true
}

// Keys returns the key arguments of args, using the key range from COMMAND
// and explicit parsers for commands whose keys move.
func Keys(info *Info, args [][]byte) [][]byte {
	switch info.Name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		return NumKeysAt(args, 2)
	case "zunionstore", "zinterstore", "zdiffstore":
		keys := NumKeysAt(args, 2)
		if len(args) > 1 {
			keys = append([][]byte{args[1]}, keys...)
		}
		return keys
	case "zunion", "zinter", "zdiff", "sintercard", "zintercard", "lmpop", "zmpop":
		return NumKeysAt(args, 1)
	case "blmpop", "bzmpop":
		return NumKeysAt(args, 2)
	case "sort", "sort_ro":
		return withOptionKeys(args, "store")
	case "xread", "xreadgroup":
		if i, _ := XReadStreamsAt(args); i > 0 {
			rest := args[i+1:]
			return rest[:len(rest)/2]
		}
		return nil
	case "georadius", "georadiusbymember":
		return withOptionKeys(args, "store", "storedist")
	}
	if info.First <= 0 {
		return nil
	}
	last := info.Last
	if last < 0 {
		last = len(args) + last
	}
	step := max(info.Step, 1)
	var keys [][]byte
	for i := info.First; i <= last && i < len(args); i += step {
		keys = append(keys, args[i])
	}
	return keys
}

// withOptionKeys returns args[1] and the argument after each of the named
// options (SORT … STORE k, GEORADIUS … STORE k).
func withOptionKeys(args [][]byte, options ...string) [][]byte {
	keys := [][]byte{}
	if len(args) > 1 {
		keys = append(keys, args[1])
	}
	for i := 2; i+1 < len(args); i++ {
		for _, o := range options {
			if strings.EqualFold(string(args[i]), o) {
				keys = append(keys, args[i+1])
			}
		}
	}
	return keys
}

// NumKeysAt reads a numkeys argument at position pos and returns that many
// keys after it.
func NumKeysAt(args [][]byte, pos int) [][]byte {
	if len(args) <= pos {
		return nil
	}
	n, err := strconv.Atoi(string(args[pos]))
	if err != nil || n < 0 || pos+1+n > len(args) {
		return nil
	}
	return args[pos+1 : pos+1+n]
}
