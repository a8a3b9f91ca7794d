package tests

// Membership changes while clients write.

import (
	"fmt"
	"strings"
	"testing"
)

// raftMember sends a RAFTADDPEER/RAFTREMOVEPEER to the leader of members
// through a redirect client until it is acknowledged, and returns the
// replies it got on the way.
func raftMember(t testing.TB, c *faultCluster, members []*Node, args ...interface{}) []string {
	t.Helper()
	rc := newRedirectClient(c.nodeAddrs(), nil, cmdTimeout, 7)
	defer rc.close()
	rc.cur = waitLeader(t, members...).Addr
	var replies []string
	eventually(t, leaderTimeout, func() error {
		v, _, err := rc.do(args...)
		replies = append(replies, fmt.Sprint(v, " ", err))
		if err != nil {
			return fmt.Errorf("%v: %v", args, err)
		}
		return nil
	})
	return replies
}

// TestMembershipUnderLoad adds a node, removes a follower and then removes
// the leader, while three clients write through -TRY redirects. After each
// change every member lists the same members and writes keep being
// acknowledged; the removed nodes keep running (they must not disrupt the
// cluster); at the end no acknowledged write is lost and the members agree
// on RAFTDIGEST at the same index.
func TestMembershipUnderLoad(t *testing.T) {
	c := startFaultCluster(t, 3, nodeOpts{})
	load := startWriteLoad(t, "load", 3, c.nodeAddrs(), c.direct)
	load.waitProgress(t, 50, leaderTimeout)

	// Add: the new node joins through node 0's advertised address.
	n4 := c.addNode(c.nodes[0].Addr)
	members := append([]*Node(nil), c.nodes...)
	waitMembers(t, members...)
	load.waitProgress(t, 100, leaderTimeout)
	d := load.settled(t, members...)
	t.Logf("added %s; members agree at index %d", n4, d.Applied)

	// Remove a follower (not the one that just joined).
	leader := waitLeader(t, members...)
	var follower *Node
	for _, n := range others(members, leader, n4) {
		follower = n
		break
	}
	raftMember(t, c, members, "RAFTREMOVEPEER", follower.Addr)
	members = others(members, follower)
	waitMembers(t, members...)
	load.waitProgress(t, 100, leaderTimeout)
	t.Logf("removed follower %s", follower)

	// Remove the leader itself: it steps down, the others elect a leader.
	leader = waitLeader(t, members...)
	replies := raftMember(t, c, members, "RAFTREMOVEPEER", leader.Addr)
	t.Logf("removing leader %s: %s", leader, strings.Join(replies, "; "))
	members = others(members, leader)
	waitMembers(t, members...)
	newLeader := waitLeader(t, members...)
	if newLeader == leader {
		t.Fatalf("the removed leader %s still leads", leader)
	}
	load.waitProgress(t, 100, leaderTimeout)
	d = load.settled(t, members...)
	t.Logf("removed leader %s; new leader %s; members agree at index %d; removed nodes still running: %v, %v",
		leader, newLeader, d.Applied, follower.Running(), leader.Running())
	load.check(t, newLeader)
	waitApplied(t, members...)
}
