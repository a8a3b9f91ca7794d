package main

import "testing"

// TestKilledScriptHoldsBackDecisions: once this node's child killed a
// script (a client's SCRIPT KILL on the leader), proposals carry an A short
// of it until the log decides it, so no entry can claim the script ran
// before its stop is committed.
func TestKilledScriptHoldsBackDecisions(t *testing.T) {
	f := &fsm{applyState: &applyState{stops: newScriptStops()}}
	ref := scriptRef{Index: 13, Pos: 0}
	f.outcomes.started(ref)
	f.applied.Store(13)
	if got := f.decidingIndex(); got != 13 {
		t.Fatalf("a script still undecided but not killed: A = %d, want 13", got)
	}
	f.outcomes.killed(ref)
	f.applied.Store(15)
	if got := f.decidingIndex(); got != 12 {
		t.Fatalf("after the kill: A = %d, want 12 (short of entry 13)", got)
	}
	// An entry that does not reach it decides nothing.
	f.outcomes.decide(&entry{Kind: entryCommands, A: 12}, f.stops)
	if got := f.decidingIndex(); got != 12 {
		t.Fatalf("after an earlier entry: A = %d, want 12", got)
	}
	// The stop decides it: proposals carry the applied index again, and no
	// replay is needed (the child killed it cleanly).
	f.outcomes.decide(&entry{Kind: entryStop, A: 12, Stop: scriptStop{Ref: ref, Reason: stopUser}}, f.stops)
	if got := f.decidingIndex(); got != 15 {
		t.Fatalf("after the stop: A = %d, want 15", got)
	}
	if f.outcomes.rebuildFrom != 0 {
		t.Fatalf("a cleanly killed and stopped script asks for a replay from %d", f.outcomes.rebuildFrom)
	}
	if f.stops.voidedReason(ref) != stopUser {
		t.Fatalf("the stop was not recorded")
	}
}
