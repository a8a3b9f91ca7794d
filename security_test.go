package main

import "testing"

// TestPeerSource: peer streams leave from -bind only when it is one
// specific IP address.
func TestPeerSource(t *testing.T) {
	for bind, want := range map[string]string{
		"127.0.0.11": "127.0.0.11", "10.1.2.3": "10.1.2.3", "::1": "::1",
		"0.0.0.0": "<nil>", "::": "<nil>", "localhost": "<nil>", "": "<nil>",
	} {
		if got := peerSource(bind).String(); got != want {
			t.Errorf("peerSource(%q) = %s, want %s", bind, got, want)
		}
	}
}
