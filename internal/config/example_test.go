package config_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/redraft/redraft/internal/config"
)

// A program declares each option once, then parses the command line and
// the environment (and the --config file, when one is named).
func Example() {
	var (
		port          int
		dir           string
		followerProxy bool
		maxMemory     int64
	)
	s := config.New("redraft")
	s.Usage = "Usage: redraft [options]\n"
	s.Version = func() string { return "redraft v1.0.0" }
	s.Add(config.Option{Name: "port", Synonyms: []string{"p"}, Group: config.Cluster, Example: "7482",
		Help: "TCP port for clients and peers.", Value: config.IntRange(&port, 7481, 1, 65535)})
	s.Add(config.Option{Name: "dir", Group: config.Storage, Arg: "path", Example: "/var/lib/redraft",
		Help: "Data directory.", Value: config.String(&dir, "data")})
	s.Add(config.Option{Name: "follower-proxy", Group: config.Client,
		Help: "Followers relay writes to the leader.", Value: config.Bool(&followerProxy, false)})
	s.Add(config.Option{Name: "maxmemory", Group: config.Storage, Example: "2gb",
		Help: "Memory limit; 0 for none.", Value: config.Size(&maxMemory, 0)})

	err := s.Parse([]string{"-p", "7482", "--maxmemory=512mb"}, []string{"REDRAFT_FOLLOWER_PROXY=yes", "HOME=/root"})
	switch {
	case errors.Is(err, config.ErrHelp), errors.Is(err, config.ErrVersion):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "redraft:", err)
		os.Exit(2)
	}
	fmt.Println(port, dir, followerProxy, maxMemory)
	for _, st := range s.Effective() {
		from := st.Where // "flag -p", "env REDRAFT_PORT", "redraft.conf:3"
		if st.Source == config.FromDefault {
			from = "default"
		}
		fmt.Printf("%s %s (%s)\n", st.Name, st.Redacted(), from)
	}
	// Output:
	// 7482 data true 536870912
	// port 7482 (flag -p)
	// dir data (default)
	// follower-proxy yes (env REDRAFT_FOLLOWER_PROXY)
	// maxmemory 512mb (flag --maxmemory)
}
