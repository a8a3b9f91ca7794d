// Package config declares a program's options once and fills them from, in
// order of precedence, command-line flags, environment variables, a
// Redis-style configuration file and the declared defaults.
//
// Each option has one canonical name (e.g. "port"), optional synonyms ("p"),
// a help group, help text, an example and a typed destination (see String,
// Int, Bool, Duration, Size, Enum, …). A Set parses every source, reports
// errors that name the source (flag, environment variable, or file and
// line), prints grouped help, and lists the effective configuration with
// the source of each value.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
)

// Group is the section of the help output an option appears in.
type Group int

// The help groups, in the order --help prints them.
const (
	Cluster Group = iota
	Client
	Storage
	Security
	Observability
)

// groupNames are the headings of the groups, indexed by Group.
var groupNames = [...]string{"Cluster", "Client", "Storage", "Security", "Observability"}

// String returns the group's heading, e.g. "Cluster".
func (g Group) String() string {
	if g < 0 || int(g) >= len(groupNames) {
		return fmt.Sprintf("Group(%d)", int(g))
	}
	return groupNames[g]
}

// Source tells where an option's effective value came from. Later sources
// win: a flag overrides the environment, which overrides the file.
type Source int

// The sources, from lowest to highest precedence.
const (
	FromDefault Source = iota
	FromFile
	FromEnv
	FromFlag
)

// sourceNames are the short names of the sources, indexed by Source.
var sourceNames = [...]string{"default", "file", "env", "flag"}

// String returns "default", "file", "env" or "flag".
func (s Source) String() string {
	if s < 0 || int(s) >= len(sourceNames) {
		return fmt.Sprintf("Source(%d)", int(s))
	}
	return sourceNames[s]
}

// Option declares one setting.
type Option struct {
	// Name is the canonical name: lower case letters, digits and dashes,
	// e.g. "snapshot-threshold". It is the file's name, the long flag and,
	// upper-cased with underscores, the environment variable's suffix.
	Name string
	// Synonyms are other accepted names, e.g. "p" for "port".
	Synonyms []string
	// Group is the help section.
	Group Group
	// Help is one or more sentences; --help wraps it.
	Help string
	// Example is shown in the help: a value ("7482"), rendered as
	// "--name 7482", or a whole command-line fragment starting with "-".
	Example string
	// Arg names the value in the help ("host:port"); by default the
	// value's kind ("int", "size", "low|medium|high").
	Arg string
	// DefaultText replaces the default in the help when the declared
	// default is computed later, e.g. "127.0.0.1:PORT".
	DefaultText string
	// Secret hides the value in Setting.Redacted (passwords).
	Secret bool
	// Value is the typed destination, holding the default.
	Value Value
}

// Value is an option's typed destination. The constructors in this package
// (String, Int, Bool, …) cover the usual kinds; a program can add its own.
type Value interface {
	// Set parses s and stores it; on error the destination is unchanged.
	Set(s string) error
	// String formats the current value as a config file would spell it.
	String() string
	// Kind names the value in the help, e.g. "int", "size", "low|high".
	Kind() string
	// Allowed describes the accepted values for error messages, e.g.
	// "an integer from 1 to 65535".
	Allowed() string
}

// boolValue is implemented by switches, which a flag may give without a
// value (--follower-proxy means --follower-proxy=yes).
type boolValue interface {
	Value
	IsBool() bool
}

// isBool reports whether v is a switch.
func isBool(v Value) bool {
	b, ok := v.(boolValue)
	return ok && b.IsBool()
}

// Names reserved by the Set itself.
const (
	configName  = "config"
	helpName    = "help"
	helpShort   = "h"
	versionName = "version"
)

// ErrHelp is returned by Parse after it printed the help (-h, --help).
var ErrHelp = errors.New("help requested")

// ErrVersion is returned by Parse after it printed the version (--version).
var ErrVersion = errors.New("version requested")

// entry is a declared option with its default and the origin of its
// current value.
type entry struct {
	Option
	def    string
	source Source
	where  string
}

// Set is a program's collection of options. Declare every option with Add,
// then call Parse once. A Set is not safe for concurrent use.
type Set struct {
	// Usage is printed by --help before the options: a usage line, a
	// sentence or two and examples. It should end with a newline.
	Usage string
	// Version, when set, makes --version print its result and Parse
	// return ErrVersion.
	Version func() string
	// Output receives --help and --version; nil means os.Stdout.
	Output io.Writer

	program    string
	envPrefix  string
	entries    []*entry
	byName     map[string]*entry
	ignoredEnv []string
	configFile string
	configFrom string
}

// New returns an empty Set for the named program. Environment variables
// are the program's name upper-cased plus "_" plus the option's name, e.g.
// REDRAFT_PORT; PROGRAM_CONFIG names the config file.
func New(program string) *Set {
	return &Set{
		program:   program,
		envPrefix: envName(program) + "_",
		byName:    map[string]*entry{},
	}
}

// Add declares an option; its Value already holds the default. Add panics
// on a programming error: an invalid or duplicate name, or a missing Value.
func (s *Set) Add(o Option) {
	if o.Value == nil {
		panic(fmt.Sprintf("config: option %q has no Value", o.Name))
	}
	e := &entry{Option: o, def: o.Value.String()}
	for _, n := range append([]string{o.Name}, o.Synonyms...) {
		s.register(n, e)
	}
	s.entries = append(s.entries, e)
}

// register maps one name of an option, panicking on a bad or taken name.
func (s *Set) register(name string, e *entry) {
	if !validName(name) {
		panic(fmt.Sprintf("config: invalid option name %q", name))
	}
	switch name {
	case configName, helpName, helpShort, versionName:
		panic(fmt.Sprintf("config: option name %q is reserved", name))
	}
	if _, dup := s.byName[name]; dup {
		panic(fmt.Sprintf("config: option name %q declared twice", name))
	}
	s.byName[name] = e
}

// validName reports whether name is lower-case letters, digits and inner
// dashes, starting with a letter.
func validName(name string) bool {
	if name == "" || name[0] < 'a' || name[0] > 'z' || strings.HasSuffix(name, "-") {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// IgnoreEnv names environment variables with the program's prefix that are
// not options and must not be reported as unknown, e.g. a test harness's
// REDRAFT_BIN. A name ending in "*" matches every variable it prefixes.
func (s *Set) IgnoreEnv(names ...string) {
	s.ignoredEnv = append(s.ignoredEnv, names...)
}

// EnvVar returns the environment variable for an option name, e.g.
// "follower-proxy" → "REDRAFT_FOLLOWER_PROXY".
func (s *Set) EnvVar(name string) string {
	return s.envPrefix + envName(name)
}

// envName upper-cases a name and turns dashes into underscores.
func envName(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// ConfigFile returns the config file that Parse read ("" for none) and
// where its name came from ("flag --config" or "env REDRAFT_CONFIG").
func (s *Set) ConfigFile() (path, from string) {
	return s.configFile, s.configFrom
}

// lookup finds an option by any of its names, case-insensitively.
func (s *Set) lookup(name string) *entry {
	return s.byName[strings.ToLower(name)]
}

// Setting is one option's effective value and its origin.
type Setting struct {
	Name    string // canonical name
	Group   Group
	Value   string // effective value, spelled as in a config file
	Default string // declared default, spelled the same way
	Source  Source // where Value came from
	Where   string // "--port", "REDRAFT_PORT", "redraft.conf:12"; "" for a default
	Secret  bool   // the value must not be logged
}

// Redacted returns the value, or "(hidden)" for a non-empty secret.
func (st Setting) Redacted() string {
	if st.Secret && st.Value != "" {
		return "(hidden)"
	}
	return st.Value
}

// Effective lists every option's current value and source, in declaration
// order.
func (s *Set) Effective() []Setting {
	out := make([]Setting, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e.setting())
	}
	return out
}

// Lookup returns the effective setting of the option with this name or
// synonym (case-insensitive).
func (s *Set) Lookup(name string) (Setting, bool) {
	e := s.lookup(name)
	if e == nil {
		return Setting{}, false
	}
	return e.setting(), true
}

// setting describes the entry's current state.
func (e *entry) setting() Setting {
	return Setting{
		Name: e.Name, Group: e.Group, Value: e.Value.String(), Default: e.def,
		Source: e.source, Where: e.where, Secret: e.Secret,
	}
}

// Names returns every canonical option name, sorted (for CONFIG GET-style
// pattern matching).
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.entries))
	for _, e := range s.entries {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	return names
}

// output is where help and version text go.
func (s *Set) output() io.Writer {
	if s.Output != nil {
		return s.Output
	}
	return os.Stdout
}

// LogAttrs returns the settings as slog attributes for a start-up log
// line: one group per option, "name.value" (secrets redacted) and
// "name.source" ("flag -p", "env REDRAFT_PORT", "file:line"). With all
// false, options left at their defaults are omitted.
func (s *Set) LogAttrs(all bool) []any {
	var attrs []any
	for _, st := range s.Effective() {
		if st.Source == FromDefault && !all {
			continue
		}
		where := st.Where
		if where == "" {
			where = st.Source.String()
		}
		attrs = append(attrs, slog.Group(st.Name, slog.String("value", st.Redacted()), slog.String("source", where)))
	}
	return attrs
}
