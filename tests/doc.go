// Package tests holds the black-box integration tests for the redraft
// binary. The tests build the binary from the module root once (TestMain in
// harness_test.go), start real nodes (each with its own child redis-server)
// on loopback ports and talk to them with go-redis, redis-cli and
// redis-benchmark.
//
// Run them with bounded parallelism:
//
//	go test -count=1 -p 1 ./tests/
//
// Environment knobs:
//
//	REDRAFT_BIN            use this prebuilt binary instead of building one
//	REDRAFT_TEST_LOGLEVEL  pass -loglevel to every node (default: binary's default)
//	REDRAFT_TEST_KEEP      keep the node directories and logs after the run
//	REDRAFT_LIN_DURATION   how long TestLinearizability injects faults at least (default: one of each kind)
//	REDRAFT_CRASH_LOOPS    rounds of TestCrashTruncatedTail and TestCrashKillAtRandomMoments
//
// The fault tests (netfault_test.go and the tests that use it) wire every
// node's peer traffic through a fault-injecting proxy on loopback; make
// torture runs the linearizability check and the crash loops for longer
// (see the Makefile).
package tests
