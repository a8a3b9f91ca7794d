package main

import (
	"regexp"

	"github.com/redraft/redraft/internal/resp"
)

// An apply step: one command as the child will run it, with what the
// apply path must do around it. rewrite.go plans steps from the log's
// commands (streams.go the stream commands); pipeline.go runs them.

// indexEffect is what a command does to the expiry index besides its keys.
type indexEffect int

const (
	effectNone indexEffect = iota
	effectFlushDB
	effectFlushAll
	effectSwapDB
)

// applyStep is one command as the child will run it.
type applyStep struct {
	db        int
	proto     resp.Proto // the protocol the client reads replies in
	args      [][]byte
	precheck  []dbKey // keys whose due deadlines are enforced first
	readBack  []dbKey // keys whose deadline is read back afterwards
	expireNow bool    // a deadline <= T may have been set on readBack keys
	// known, when set, tells the key's new deadline from the command's own
	// reply, and replaces the read-back of that key (outside transactions).
	known     *knownDeadline
	effect    indexEffect
	swapA     int
	swapB     int
	mapReply  func([]byte) []byte // rewrites the child's reply
	script    string              // script body to remember (EVAL, SCRIPT LOAD)
	flushAll  bool                // SCRIPT FLUSH: forget every script
	sub       []applyStep         // queued commands of a transaction
	watch     string              // the transaction's watch ID, if any
	reprelude bool                // FUNCTION RESTORE: add the prelude to loaded libraries
	// notifyChange: CONFIG SET notify-keyspace-events, which expiry follows.
	notifyChange bool
	// thresholdChange: CONFIG SET busy-reply-threshold or lua-time-limit.
	thresholdChange bool
	// userScript: the command runs a client's script or function (EVAL,
	// EVALSHA, FCALL, or a transaction with one), which the log may stop;
	// function: FCALL (stopped with FUNCTION KILL). ref names the command in
	// the log.
	userScript bool
	function   bool
	ref        scriptRef
	// held are CONFIG SET's new values of parameters redraft keeps and
	// never sends to the child; they take effect if the command succeeds.
	held map[string]string
	// configGet: CONFIG GET inside a transaction, whose reply gets the
	// held parameters' values.
	configGet bool
}

// knownDeadline is a deadline the pipeline records from a command's reply
// instead of reading it back: the command set it exactly when the reply
// says so.
type knownDeadline struct {
	key  dbKey
	at   int64
	when func(reply []byte) bool // whether this reply means the deadline was set
}

// internalScriptReply makes an error raised inside one of redraft's own
// scripts read as the error of the command the client sent: Redis adds
// "script: <sha>, on @user_script:N." to errors raised in scripts.
func internalScriptReply(raw []byte) []byte {
	if !resp.ReplyIsError(raw) {
		return raw
	}
	if m := scriptErrorSuffix.FindIndex(raw); m != nil {
		return append(append([]byte(nil), raw[:m[0]]...), "\r\n"...)
	}
	return raw
}

// scriptErrorSuffix is what Redis appends to an error raised in a script.
var scriptErrorSuffix = regexp.MustCompile(` script: [0-9a-f]{40}, on @user_script:[0-9]+\.\r\n$`)
