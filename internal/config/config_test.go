package config

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// opts are the destinations of testSet's options.
type opts struct {
	port           int
	dir            string
	join           string
	consistency    string
	followerProxy  bool
	snapshotThresh uint64
	snapInterval   time.Duration
	maxMemory      int64
	password       string
	loglevel       string
}

// testSet declares options shaped like redraft's.
func testSet() (*Set, *opts) {
	o := &opts{}
	s := New("redraft")
	s.Usage = "Usage: redraft [options]\n\nRuns a redis-server under Raft.\n\nExamples:\n  redraft -p 7482 -dir data2 -join 7481\n"
	s.Output = &bytes.Buffer{}
	s.Add(Option{Name: "port", Synonyms: []string{"p"}, Group: Cluster, Example: "7482",
		Help: "TCP port shared by Redis clients and Raft peers.", Value: IntRange(&o.port, 7481, 1, 65535)})
	s.Add(Option{Name: "join", Group: Cluster, Arg: "host:port,…", Example: "10.0.0.1:7481,10.0.0.2:7481",
		Help:  "Members of an existing cluster to join, tried in turn. Ignored when the data directory already holds Raft state.",
		Value: String(&o.join, "")})
	s.Add(Option{Name: "consistency", Group: Client, Example: "high",
		Help:  "How reads are served: low (any node, maybe stale), medium (the leader), high (linearizable).",
		Value: Enum(&o.consistency, "medium", "low", "medium", "high")})
	s.Add(Option{Name: "follower-proxy", Group: Client, Example: "--follower-proxy",
		Help: "Followers relay writes to the leader instead of answering -TRY.", Value: Bool(&o.followerProxy, false)})
	s.Add(Option{Name: "dir", Group: Storage, Example: "/var/lib/redraft",
		Help: "Data directory: Raft log, snapshots and the child's socket.", Value: String(&o.dir, "data")})
	s.Add(Option{Name: "snapshot-threshold", Group: Storage, Example: "100000",
		Help: "New log entries after which a snapshot is taken.", Value: Uint64(&o.snapshotThresh, 8192)})
	s.Add(Option{Name: "snapshot-interval", Group: Storage, Example: "30s",
		Help: "How often to check the snapshot threshold.", Value: Duration(&o.snapInterval, 10*time.Second)})
	s.Add(Option{Name: "maxmemory", Group: Storage, Example: "2gb",
		Help: "Refuse writes that grow memory above this size; 0 for no limit.", Value: Size(&o.maxMemory, 0)})
	s.Add(Option{Name: "requirepass", Group: Security, Secret: true, Arg: "password",
		Help: "Password clients must give with AUTH.", Value: String(&o.password, "")})
	s.Add(Option{Name: "loglevel", Group: Observability, Example: "verbose",
		Help: "Log level; quiet shows errors only.", Value: Enum(&o.loglevel, "notice", "quiet", "warning", "notice", "verbose", "debug")})
	return s, o
}

// writeConf writes a config file into a temporary directory.
func writeConf(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "redraft.conf")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaults(t *testing.T) {
	s, o := testSet()
	if err := s.Parse(nil, nil); err != nil {
		t.Fatal(err)
	}
	if o.port != 7481 || o.dir != "data" || o.consistency != "medium" || o.followerProxy ||
		o.snapshotThresh != 8192 || o.snapInterval != 10*time.Second || o.maxMemory != 0 {
		t.Fatalf("defaults not applied: %+v", o)
	}
	for _, st := range s.Effective() {
		if st.Source != FromDefault || st.Where != "" || st.Value != st.Default {
			t.Errorf("%s: %+v, want an untouched default", st.Name, st)
		}
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(o *opts) bool
	}{
		{"short one dash", []string{"-p", "7482"}, func(o *opts) bool { return o.port == 7482 }},
		{"short two dashes", []string{"--p=7482"}, func(o *opts) bool { return o.port == 7482 }},
		{"long two dashes equals", []string{"--port=7482"}, func(o *opts) bool { return o.port == 7482 }},
		{"long one dash space", []string{"-port", "7482"}, func(o *opts) bool { return o.port == 7482 }},
		{"upper case name", []string{"--PORT", "7482"}, func(o *opts) bool { return o.port == 7482 }},
		{"repeated flag last wins", []string{"-p", "1", "--port", "2"}, func(o *opts) bool { return o.port == 2 }},
		{"switch alone", []string{"--follower-proxy"}, func(o *opts) bool { return o.followerProxy }},
		{"switch off", []string{"--follower-proxy", "--follower-proxy=false"}, func(o *opts) bool { return !o.followerProxy }},
		{"switch yes", []string{"-follower-proxy=yes"}, func(o *opts) bool { return o.followerProxy }},
		{"enum any case", []string{"--consistency", "HIGH"}, func(o *opts) bool { return o.consistency == "high" }},
		{"size binary unit", []string{"--maxmemory", "512mb"}, func(o *opts) bool { return o.maxMemory == 512<<20 }},
		{"size decimal unit", []string{"--maxmemory=2k"}, func(o *opts) bool { return o.maxMemory == 2000 }},
		{"duration", []string{"--snapshot-interval", "1m30s"}, func(o *opts) bool { return o.snapInterval == 90*time.Second }},
		{"uint64", []string{"--snapshot-threshold=18446744073709551615"}, func(o *opts) bool { return o.snapshotThresh == 1<<64-1 }},
		{"value starting with a dash", []string{"--join", "-x"}, func(o *opts) bool { return o.join == "-x" }},
		{"empty value", []string{"--dir="}, func(o *opts) bool { return o.dir == "" }},
		{"value with equals", []string{"--requirepass=a=b"}, func(o *opts) bool { return o.password == "a=b" }},
		{"double dash ends flags", []string{"-p", "7482", "--"}, func(o *opts) bool { return o.port == 7482 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, o := testSet()
			if err := s.Parse(tc.args, nil); err != nil {
				t.Fatal(err)
			}
			if !tc.check(o) {
				t.Fatalf("%v: got %+v", tc.args, o)
			}
		})
	}
}

func TestFlagSourceIsRecorded(t *testing.T) {
	s, _ := testSet()
	if err := s.Parse([]string{"-p", "7482", "--follower-proxy"}, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"port": "flag -p", "follower-proxy": "flag --follower-proxy"}
	for name, where := range want {
		st, ok := s.Lookup(name)
		if !ok || st.Source != FromFlag || st.Where != where {
			t.Errorf("%s: %+v, want source flag from %q", name, st, where)
		}
	}
	if st, _ := s.Lookup("P"); st.Value != "7482" {
		t.Errorf("Lookup by synonym: %+v", st)
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		check func(o *opts) bool
	}{
		{"port", []string{"REDRAFT_PORT=7482"}, func(o *opts) bool { return o.port == 7482 }},
		{"synonym", []string{"REDRAFT_P=7483"}, func(o *opts) bool { return o.port == 7483 }},
		{"dashes as underscores", []string{"REDRAFT_FOLLOWER_PROXY=yes"}, func(o *opts) bool { return o.followerProxy }},
		{"switch off", []string{"REDRAFT_FOLLOWER_PROXY=0"}, func(o *opts) bool { return !o.followerProxy }},
		{"empty value is unset", []string{"REDRAFT_PORT="}, func(o *opts) bool { return o.port == 7481 }},
		{"other programs' variables", []string{"PORT=1", "REDRAFTX=1", "HOME=/root"}, func(o *opts) bool { return o.port == 7481 }},
		{"not option-like", []string{"REDRAFT_A-B=1", "REDRAFT_=1"}, func(o *opts) bool { return o.port == 7481 }},
		{"config variable is not an option", []string{"REDRAFT_CONFIG="}, func(o *opts) bool { return o.port == 7481 }},
		{"value with equals", []string{"REDRAFT_REQUIREPASS=x=y"}, func(o *opts) bool { return o.password == "x=y" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, o := testSet()
			if err := s.Parse(nil, tc.env); err != nil {
				t.Fatal(err)
			}
			if !tc.check(o) {
				t.Fatalf("%v: got %+v", tc.env, o)
			}
		})
	}
}

func TestIgnoreEnv(t *testing.T) {
	s, _ := testSet()
	s.IgnoreEnv("REDRAFT_BIN", "REDRAFT_TEST_*")
	env := []string{"REDRAFT_BIN=/x", "REDRAFT_TEST_KEEP=1", "REDRAFT_TEST_LOGLEVEL=debug"}
	if err := s.Parse(nil, env); err != nil {
		t.Fatal(err)
	}
	s, _ = testSet()
	err := s.Parse(nil, []string{"REDRAFT_BIN=/x"})
	if !errors.Is(err, ErrUnknownOption) {
		t.Fatalf("REDRAFT_BIN not ignored should be unknown, got %v", err)
	}
}

func TestFile(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(o *opts) bool
	}{
		{"basic", "port 7482\ndir /var/lib/redraft\n", func(o *opts) bool { return o.port == 7482 && o.dir == "/var/lib/redraft" }},
		{"comments and blanks", "# redraft\n\n   # indented comment\nport 7482\n\n", func(o *opts) bool { return o.port == 7482 }},
		{"case-insensitive names", "PORT 7482\nFollower-Proxy yes\n", func(o *opts) bool { return o.port == 7482 && o.followerProxy }},
		{"synonym", "p 7482\n", func(o *opts) bool { return o.port == 7482 }},
		{"last wins", "port 1\nport 2\n", func(o *opts) bool { return o.port == 2 }},
		{"double quotes", `dir "/data/my dir"` + "\n", func(o *opts) bool { return o.dir == "/data/my dir" }},
		{"escapes", `requirepass "a\"b\\c\x41\n"` + "\n", func(o *opts) bool { return o.password == "a\"b\\cA\n" }},
		{"single quotes", `requirepass 'it\'s "x"'` + "\n", func(o *opts) bool { return o.password == `it's "x"` }},
		{"empty quoted", `join ""` + "\n", func(o *opts) bool { return o.join == "" }},
		{"tabs and spaces", "\t port \t 7482 \t\n", func(o *opts) bool { return o.port == 7482 }},
		{"CRLF", "port 7482\r\ndir x\r\n", func(o *opts) bool { return o.port == 7482 && o.dir == "x" }},
		{"byte order mark", "\xef\xbb\xbfport 7482\n", func(o *opts) bool { return o.port == 7482 }},
		{"no final newline", "port 7482", func(o *opts) bool { return o.port == 7482 }},
		{"redis-style switch", "follower-proxy no\n", func(o *opts) bool { return !o.followerProxy }},
		{"size", "maxmemory 1GB\n", func(o *opts) bool { return o.maxMemory == 1<<30 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, o := testSet()
			path := writeConf(t, tc.body)
			if err := s.Parse([]string{"--config", path}, nil); err != nil {
				t.Fatal(err)
			}
			if !tc.check(o) {
				t.Fatalf("%q: got %+v", tc.body, o)
			}
		})
	}
}

func TestFileFromEnvAndWhere(t *testing.T) {
	path := writeConf(t, "# header\nport 1\n\nport 7482\n")
	s, o := testSet()
	if err := s.Parse(nil, []string{"REDRAFT_CONFIG=" + path}); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Lookup("port")
	if o.port != 7482 || st.Source != FromFile || st.Where != path+":4" {
		t.Fatalf("got port %d from %v %q", o.port, st.Source, st.Where)
	}
	if p, from := s.ConfigFile(); p != path || from != "env REDRAFT_CONFIG" {
		t.Fatalf("ConfigFile() = %q, %q", p, from)
	}
}

func TestPrecedence(t *testing.T) {
	path := writeConf(t, "port 1\ndir file-dir\nconsistency low\nmaxmemory 1mb\n")
	otherPath := writeConf(t, "port 9\n")
	tests := []struct {
		name      string
		args, env []string
		want      map[string]string // option → "value source"
	}{
		{"file only", []string{"--config", path}, nil,
			map[string]string{"port": "1 file", "dir": "file-dir file", "snapshot-threshold": "8192 default"}},
		{"env over file", []string{"--config", path}, []string{"REDRAFT_PORT=2", "REDRAFT_DIR=env-dir"},
			map[string]string{"port": "2 env", "dir": "env-dir env", "consistency": "low file"}},
		{"flag over env over file", []string{"--config", path, "-p", "3"}, []string{"REDRAFT_PORT=2", "REDRAFT_CONSISTENCY=high"},
			map[string]string{"port": "3 flag", "consistency": "high env", "maxmemory": "1mb file", "dir": "file-dir file"}},
		{"flag over file", []string{"--config=" + path, "--dir", "flag-dir"}, nil,
			map[string]string{"dir": "flag-dir flag", "port": "1 file"}},
		{"flag before --config still wins", []string{"-p", "3", "--config", path}, nil,
			map[string]string{"port": "3 flag"}},
		{"--config over REDRAFT_CONFIG", []string{"--config", otherPath}, []string{"REDRAFT_CONFIG=" + path},
			map[string]string{"port": "9 file", "dir": "data default"}},
		{"empty --config means no file", []string{"--config="}, []string{"REDRAFT_CONFIG=" + path},
			map[string]string{"port": "7481 default"}},
		{"env without file", nil, []string{"REDRAFT_MAXMEMORY=2gb"},
			map[string]string{"maxmemory": "2gb env", "port": "7481 default"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := testSet()
			if err := s.Parse(tc.args, tc.env); err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				st, ok := s.Lookup(name)
				if got := st.Value + " " + st.Source.String(); !ok || got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.conf")
	tests := []struct {
		name      string
		args, env []string
		file      string // body of a config file passed with --config
		is        error
		source    Source
		option    string
		want      []string // substrings of the message
	}{
		{name: "unknown flag", args: []string{"--prot", "1"}, is: ErrUnknownOption, source: FromFlag,
			want: []string{"flag --prot: unknown option", "did you mean --port?"}},
		{name: "unknown flag with value", args: []string{"--nothing-like-it=1"}, is: ErrUnknownOption, source: FromFlag,
			want: []string{"flag --nothing-like-it: unknown option"}},
		{name: "unknown env", env: []string{"REDRAFT_PROT=1"}, is: ErrUnknownOption, source: FromEnv,
			want: []string{"env REDRAFT_PROT: unknown option", "did you mean REDRAFT_PORT?"}},
		{name: "unknown file name with line", file: "port 1\n\n# c\nprot 2\n", is: ErrUnknownOption, source: FromFile,
			want: []string{"redraft.conf:4: unknown option \"prot\"", `did you mean "port"?`}},
		{name: "bad int flag", args: []string{"-p", "abc"}, is: ErrBadValue, source: FromFlag, option: "port",
			want: []string{"flag -p", `invalid value "abc" for port`, "an integer from 1 to 65535"}},
		{name: "out of range", args: []string{"--port=70000"}, is: ErrBadValue, source: FromFlag, option: "port",
			want: []string{"out of range", "from 1 to 65535"}},
		{name: "bad enum env", env: []string{"REDRAFT_CONSISTENCY=extreme"}, is: ErrBadValue, source: FromEnv, option: "consistency",
			want: []string{"env REDRAFT_CONSISTENCY", `"extreme" for consistency`, "one of low, medium, high"}},
		{name: "bad bool file", file: "follower-proxy maybe\n", is: ErrBadValue, source: FromFile, option: "follower-proxy",
			want: []string{"redraft.conf:1", "follower-proxy", "yes or no"}},
		{name: "bad size", args: []string{"--maxmemory", "12xb"}, is: ErrBadValue, source: FromFlag, option: "maxmemory",
			want: []string{"maxmemory", "512mb"}},
		{name: "negative size", args: []string{"--maxmemory", "-1"}, is: ErrBadValue, source: FromFlag, option: "maxmemory"},
		{name: "bad duration", args: []string{"--snapshot-interval", "10"}, is: ErrBadValue, source: FromFlag, option: "snapshot-interval",
			want: []string{"a duration with a unit"}},
		{name: "negative uint", env: []string{"REDRAFT_SNAPSHOT_THRESHOLD=-1"}, is: ErrBadValue, source: FromEnv, option: "snapshot-threshold"},
		{name: "bad value even when overridden", file: "port abc\n", args: []string{"-p", "1"}, is: ErrBadValue, source: FromFile, option: "port"},
		{name: "flag without value", args: []string{"--dir"}, is: ErrMissingValue, source: FromFlag, option: "dir",
			want: []string{"--dir needs a value"}},
		{name: "file line without value", file: "dir\n", is: ErrMissingValue, source: FromFile, option: "dir",
			want: []string{"redraft.conf:1", "dir needs a value (e.g. dir /var/lib/redraft)"}},
		{name: "file line with two values", file: "dir a b\n", is: ErrSyntax, source: FromFile, option: "dir",
			want: []string{"takes one value, not 2"}},
		{name: "unbalanced quotes", file: "\ndir \"abc\n", is: ErrSyntax, source: FromFile,
			want: []string{"redraft.conf:2", "unbalanced double quotes"}},
		{name: "text after closing quote", file: "dir 'a'b\n", is: ErrSyntax, source: FromFile,
			want: []string{"closing quote must be followed by a space"}},
		{name: "config inside config", file: "config other.conf\n", is: ErrSyntax, source: FromFile},
		{name: "positional argument", args: []string{"-p", "1", "extra"}, is: ErrSyntax, source: FromFlag,
			want: []string{`argument "extra": syntax error: unexpected argument`}},
		{name: "switch with separate value", args: []string{"--follower-proxy", "false"}, is: ErrSyntax, source: FromFlag,
			want: []string{"--follower-proxy=false"}},
		{name: "after double dash", args: []string{"--", "-p"}, is: ErrSyntax, source: FromFlag},
		{name: "triple dash", args: []string{"---port=1"}, is: ErrSyntax, source: FromFlag},
		{name: "version without hook", args: []string{"--version"}, is: ErrUnknownOption, source: FromFlag},
		{name: "same option twice in env", env: []string{"REDRAFT_PORT=1", "REDRAFT_P=2"}, is: ErrSyntax, source: FromEnv, option: "port",
			want: []string{"env REDRAFT_P: ", "also set by REDRAFT_PORT"}},
		{name: "missing config file", args: []string{"--config", missing}, is: os.ErrNotExist, source: FromFile,
			want: []string{"flag --config: config file", "nope.conf"}},
		{name: "missing config file from env", env: []string{"REDRAFT_CONFIG=" + missing}, is: os.ErrNotExist, source: FromFile,
			want: []string{"env REDRAFT_CONFIG: config file"}},
		{name: "config flag without value", args: []string{"--config"}, is: ErrMissingValue, source: FromFlag, option: "config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := testSet()
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeConf(t, tc.file)}, args...)
			}
			err := s.Parse(args, tc.env)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %q is not a *config.Error", err)
			}
			if ce.Source != tc.source || ce.Option != tc.option {
				t.Errorf("source %v option %q, want %v %q (%v)", ce.Source, ce.Option, tc.source, tc.option, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	s, _ := testSet()
	path := writeConf(t, "bogus 1\nport x\n")
	err := s.Parse([]string{"--config", path, "--consistency", "nope"}, []string{"REDRAFT_WHAT=1"})
	for _, w := range []string{"redraft.conf:1", "redraft.conf:2", "env REDRAFT_WHAT", "flag --consistency"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("joined error %q lacks %q", err, w)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}, {"-p", "bad", "--help"}, {"--unknown", "-h"}} {
		s, _ := testSet()
		s.Version = func() string { return "redraft test" }
		err := s.Parse(args, []string{"REDRAFT_NOPE=1"})
		if !errors.Is(err, ErrHelp) {
			t.Fatalf("%v: %v, want ErrHelp", args, err)
		}
		got := s.Output.(*bytes.Buffer).String()
		golden := filepath.Join("testdata", "help.golden")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Fatalf("%v: help differs from %s (run go test -update):\n%s", args, golden, got)
		}
	}
}

func TestHelpFitsEightyColumns(t *testing.T) {
	s, _ := testSet()
	var b bytes.Buffer
	if err := s.WriteHelp(&b); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(b.String(), "\n") {
		if n := len([]rune(line)); n > 80 {
			t.Errorf("line %d has %d columns: %q", i+1, n, line)
		}
	}
}

func TestVersionHook(t *testing.T) {
	s, _ := testSet()
	s.Version = func() string { return "redraft 1.2.3" }
	if err := s.Parse([]string{"--version"}, nil); !errors.Is(err, ErrVersion) {
		t.Fatalf("got %v, want ErrVersion", err)
	}
	if got := s.Output.(*bytes.Buffer).String(); got != "redraft 1.2.3\n" {
		t.Fatalf("printed %q", got)
	}
}

func TestEffectiveAndRedacted(t *testing.T) {
	s, _ := testSet()
	if err := s.Parse([]string{"--requirepass", "s3cret", "--maxmemory", "1048576"}, []string{"REDRAFT_DIR=/d"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]Setting{}
	var order []string
	for _, st := range s.Effective() {
		got[st.Name] = st
		order = append(order, st.Name)
	}
	if order[0] != "port" || order[len(order)-1] != "loglevel" {
		t.Errorf("Effective not in declaration order: %v", order)
	}
	if st := got["requirepass"]; st.Value != "s3cret" || st.Redacted() != "(hidden)" || !st.Secret {
		t.Errorf("requirepass: %+v %q", st, st.Redacted())
	}
	if st := got["maxmemory"]; st.Value != "1mb" || st.Default != "0" || st.Where != "flag --maxmemory" {
		t.Errorf("maxmemory: %+v", st)
	}
	if st := got["dir"]; st.Value != "/d" || st.Source != FromEnv || st.Where != "env REDRAFT_DIR" || st.Group != Storage {
		t.Errorf("dir: %+v", st)
	}
	if st := got["join"]; st.Redacted() != "" {
		t.Errorf("join: %+v", st)
	}
	if names := s.Names(); len(names) != len(order) || names[0] != "consistency" {
		t.Errorf("Names() = %v", names)
	}
}

func TestAddPanics(t *testing.T) {
	var n int
	for _, o := range []Option{
		{Name: "port", Value: Int(&n, 0)},                       // duplicate
		{Name: "x", Synonyms: []string{"p"}, Value: Int(&n, 0)}, // duplicate synonym
		{Name: "config", Value: Int(&n, 0)},                     // reserved
		{Name: "h", Value: Int(&n, 0)},                          // reserved
		{Name: "Bad_Name", Value: Int(&n, 0)},                   // invalid
		{Name: "trailing-", Value: Int(&n, 0)},                  // invalid
		{Name: "novalue"},                                       // no Value
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Add(%q) did not panic", o.Name)
				}
			}()
			s, _ := testSet()
			s.Add(o)
		}()
	}
}

func TestEnumBadDefaultPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	var v string
	Enum(&v, "x", "a", "b")
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "", want: nil},
		{in: "  a  b\tc ", want: []string{"a", "b", "c"}},
		{in: `"a b" c`, want: []string{"a b", "c"}},
		{in: `ab"c d"`, want: []string{"abc d"}},
		{in: `""`, want: []string{""}},
		{in: `''`, want: []string{""}},
		{in: `"\n\r\t\b\a\\\"\q"`, want: []string{"\n\r\t\b\a\\\"q"}},
		{in: `"\x41\x4a\x4" x`, want: []string{"AJx4", "x"}},
		{in: `'a\'b\n'`, want: []string{`a'b\n`}},
		{in: `'a"b'`, want: []string{`a"b`}},
		{in: `"abc`, bad: true},
		{in: `'abc`, bad: true},
		{in: `"a"b`, bad: true},
		{in: `'a'b`, bad: true},
		{in: `"a\"`, bad: true},
	}
	for _, tc := range tests {
		got, err := SplitArgs(tc.in)
		if tc.bad {
			if err == nil || !errors.Is(err, ErrSyntax) {
				t.Errorf("SplitArgs(%q) = %q, %v; want a syntax error", tc.in, got, err)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("SplitArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSizes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "0", want: 0}, {in: "100", want: 100}, {in: "100b", want: 100},
		{in: "1k", want: 1000}, {in: "1kb", want: 1024}, {in: "64KB", want: 64 << 10},
		{in: "1m", want: 1e6}, {in: "512mb", want: 512 << 20}, {in: "2g", want: 2e9},
		{in: "2Gb", want: 2 << 30}, {in: "1tb", want: 1 << 40}, {in: " 3 mb ", want: 3 << 20},
		{in: "", bad: true}, {in: "mb", bad: true}, {in: "-1", bad: true}, {in: "1.5gb", bad: true},
		{in: "1xb", bad: true}, {in: "9223372036854775807kb", bad: true},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
	for n, want := range map[int64]string{0: "0", 1000: "1000", 1024: "1kb", 3 << 20: "3mb", 5 << 30: "5gb", 1<<30 + 1: "1073741825", 2 << 40: "2tb"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestGroupAndSourceNames(t *testing.T) {
	if Observability.String() != "Observability" || Group(9).String() != "Group(9)" {
		t.Error("Group.String")
	}
	if FromEnv.String() != "env" || Source(7).String() != "Source(7)" {
		t.Error("Source.String")
	}
	s := New("redraft")
	if got := s.EnvVar("follower-proxy"); got != "REDRAFT_FOLLOWER_PROXY" {
		t.Errorf("EnvVar = %q", got)
	}
}

func TestLogAttrs(t *testing.T) {
	s, _ := testSet()
	if err := s.Parse([]string{"-p", "7482", "--requirepass=pw"}, nil); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	log := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	log.Info("configuration", s.LogAttrs(false)...)
	want := `level=INFO msg=configuration port.value=7482 port.source="flag -p" requirepass.value=(hidden) requirepass.source="flag --requirepass"` + "\n"
	if b.String() != want {
		t.Fatalf("got  %s\nwant %s", b.String(), want)
	}
	if n := len(s.LogAttrs(true)); n != len(s.Effective()) {
		t.Fatalf("LogAttrs(true) has %d attrs, want %d", n, len(s.Effective()))
	}
}

func TestList(t *testing.T) {
	var peers []string
	s := New("redraft")
	s.Add(Option{Name: "join", Value: List(&peers, "127.0.0.1:7481")})
	if got := strings.Join(peers, "|"); got != "127.0.0.1:7481" {
		t.Fatalf("default %q", got)
	}
	if err := s.Parse([]string{"--join", " a:1, b:2,,c:3 "}, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(peers, "|"); got != "a:1|b:2|c:3" {
		t.Fatalf("got %q", got)
	}
	if st, _ := s.Lookup("join"); st.Value != "a:1,b:2,c:3" || st.Default != "127.0.0.1:7481" {
		t.Fatalf("setting %+v", st)
	}
}

// secretValue refuses every value, to check that errors hide secrets.
type secretValue struct{ stringValue }

func (secretValue) Set(string) error { return errors.New("too short") }

func TestSecretNotInErrors(t *testing.T) {
	var pw string
	s := New("redraft")
	s.Add(Option{Name: "masterauth", Secret: true, Value: secretValue{stringValue{&pw}}})
	err := s.Parse([]string{"--masterauth", "hunter2"}, nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "(hidden)") {
		t.Fatalf("error %v", err)
	}
}
