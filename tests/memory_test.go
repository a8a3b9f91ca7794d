package tests

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// -maxmemory is enforced by the leader before proposing: a write that can
// grow memory is refused with Redis's -OOM error once the child is above
// the limit, while reads and deletions still work.
func TestMaxMemoryOOM(t *testing.T) {
	n := startNode(t, nodeOpts{Args: []string{"-maxmemory", "3mb"}})
	n.DoEventually(10*time.Second, "SET", "warm", "1")
	big := strings.Repeat("x", 64<<10)
	var oomErr error
	eventually(t, 20*time.Second, func() error {
		for i := 0; i < 16; i++ {
			if _, err := n.Do("APPEND", "big", big); err != nil {
				if strings.HasPrefix(err.Error(), "OOM ") {
					oomErr = err
					return nil
				}
				return stopPolling(err)
			}
		}
		return errors.New("no OOM yet")
	})
	if want := "OOM command not allowed when used memory > 'maxmemory'."; oomErr.Error() != want {
		t.Fatalf("OOM error = %q, want %q", oomErr, want)
	}
	if v, err := n.Do("GET", "warm"); err != nil || v != "1" {
		t.Fatalf("GET after OOM = %v, %v", v, err)
	}
	if _, err := n.Do("DEL", "big"); err != nil {
		t.Fatalf("DEL must work above maxmemory: %v", err)
	}
	eventually(t, 10*time.Second, func() error {
		_, err := n.Do("SET", "after", "v")
		return err
	})
}
