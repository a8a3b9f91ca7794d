// Package resp speaks the Redis serialization protocol for redraft.
//
// It has three parts, none of which depends on the rest of redraft:
//
//   - RequestReader reads client requests (multibulk and inline) exactly as
//     redis-server 7.0 does, including its protocol error texts and limits.
//   - The Append functions build replies for RESP2 and RESP3 clients with the
//     bytes redis-server 7.0 would send.
//   - ReadReply, Parse and AppendValue read, decode and re-encode replies from
//     a redis-server (RESP2 and RESP3), bounded against broken peers.
package resp
