package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel causes wrapped by Error, for errors.Is.
var (
	// ErrUnknownOption: a flag, variable or file line names no option.
	ErrUnknownOption = errors.New("unknown option")
	// ErrBadValue: the value does not parse for the option's type.
	ErrBadValue = errors.New("invalid value")
	// ErrMissingValue: a flag or file line gives no value.
	ErrMissingValue = errors.New("missing value")
	// ErrSyntax: a file line or an argument is malformed.
	ErrSyntax = errors.New("syntax error")
)

// Error is a problem with one setting. Its message starts with where the
// setting came from: "flag --port", "env REDRAFT_PORT" or "redraft.conf:12".
type Error struct {
	Source Source // FromFlag, FromEnv or FromFile
	Where  string // flag as written, variable name, or file:line
	Option string // canonical option name; "" when the name is unknown
	Err    error  // the cause, wrapping one of the Err* sentinels
}

// Error formats the problem with its origin.
func (e *Error) Error() string { return e.Where + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// assignment is one "name = value" read from a source, not yet applied.
type assignment struct {
	e      *entry
	value  string
	source Source
	where  string
}

// flagScan is what the command line holds.
type flagScan struct {
	assigns     []assignment
	errs        []error
	help        bool
	version     bool
	config      string
	configWhere string
}

// Parse fills every option from the command line args (without the program
// name), the environment environ (as from os.Environ) and the config file
// named by --config or PROGRAM_CONFIG, in that order of precedence. It
// returns every problem found, joined, each an *Error. With -h or --help
// it prints the help to Output and returns ErrHelp; with --version (when
// Version is set) it prints the version and returns ErrVersion.
func (s *Set) Parse(args, environ []string) error {
	fl := s.scanFlags(args)
	if fl.help {
		return s.printHelp()
	}
	if fl.version {
		_, err := fmt.Fprintln(s.output(), s.Version())
		return errors.Join(ErrVersion, err)
	}
	envAssigns, errs := s.scanEnv(environ)
	errs = append(fl.errs, errs...)
	var fileAssigns []assignment
	if path, where := s.configSource(fl, environ); path != "" {
		s.configFile, s.configFrom = path, where
		var ferrs []error
		fileAssigns, ferrs = s.readFile(path, where)
		errs = append(errs, ferrs...)
	}
	for _, batch := range [][]assignment{fileAssigns, envAssigns, fl.assigns} {
		errs = append(errs, s.apply(batch)...)
	}
	return errors.Join(errs...)
}

// apply stores each assignment in order, so later ones win.
func (s *Set) apply(as []assignment) []error {
	var errs []error
	for _, a := range as {
		if err := a.e.Value.Set(a.value); err != nil {
			shown := strconv.Quote(a.value)
			if a.e.Secret {
				shown = "(hidden)"
			}
			errs = append(errs, &Error{Source: a.source, Where: a.where, Option: a.e.Name,
				Err: fmt.Errorf("%w %s for %s: %w (allowed: %s)", ErrBadValue, shown, a.e.Name, err, a.e.Value.Allowed())})
			continue
		}
		a.e.source, a.e.where = a.source, a.where
	}
	return errs
}

// configSource picks the config file: --config (where --config= means
// none), else PROGRAM_CONFIG.
func (s *Set) configSource(fl flagScan, environ []string) (path, where string) {
	if fl.configWhere != "" { // given on the command line, even if empty
		return fl.config, fl.configWhere
	}
	name := s.EnvVar(configName)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name && v != "" {
			return v, "env " + name
		}
	}
	return "", ""
}

// scanFlags reads the command line. Options take their value after "=" or
// as the next argument; switches take it only after "=". Parsing stops at
// an unknown option written without "=", since whether the next argument
// is its value cannot be known, but -h and --help are still honoured.
func (s *Set) scanFlags(args []string) flagScan {
	var fl flagScan
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			fl.errs = append(fl.errs, unexpectedArgs(args[i+1:])...)
			break
		}
		written, name, value, hasValue, ok := splitFlag(arg)
		if !ok {
			fl.errs = append(fl.errs, unexpectedArg(arg, args[:i], s))
			continue
		}
		where := "flag " + written
		switch name {
		case helpName, helpShort:
			fl.help = true
			continue
		case versionName:
			if s.Version != nil {
				fl.version = true
				continue
			}
		}
		if name != configName && s.lookup(name) == nil {
			fl.errs = append(fl.errs, &Error{Source: FromFlag, Where: where,
				Err: fmt.Errorf("%w%s", ErrUnknownOption, s.suggest(name, FromFlag))})
			if !hasValue {
				fl.help = fl.help || askedForHelp(args[i+1:])
				break
			}
			continue
		}
		if !hasValue {
			if name != configName && isBool(s.lookup(name).Value) {
				value = "yes"
			} else if i+1 < len(args) {
				i++
				value = args[i]
			} else {
				fl.errs = append(fl.errs, &Error{Source: FromFlag, Where: where, Option: canonical(s, name),
					Err: fmt.Errorf("%w: %s needs a value", ErrMissingValue, written)})
				continue
			}
		}
		if name == configName {
			fl.config, fl.configWhere = value, where
			continue
		}
		fl.assigns = append(fl.assigns, assignment{e: s.lookup(name), value: value, source: FromFlag, where: where})
	}
	return fl
}

// canonical returns the canonical name of a known option, or name itself.
func canonical(s *Set, name string) string {
	if e := s.lookup(name); e != nil {
		return e.Name
	}
	return name
}

// splitFlag takes apart "-name", "--name" or "--name=value". written is the
// flag as typed without its value; name is lower-cased. ok is false for
// anything that is not a flag ("x", "-", "---x", "--=v").
func splitFlag(arg string) (written, name, value string, hasValue, ok bool) {
	if len(arg) < 2 || arg[0] != '-' {
		return "", "", "", false, false
	}
	body := strings.TrimPrefix(arg[1:], "-")
	if body == "" || body[0] == '-' || body[0] == '=' {
		return "", "", "", false, false
	}
	n, v, has := strings.Cut(body, "=")
	return arg[:len(arg)-len(body)] + n, strings.ToLower(n), v, has, true
}

// askedForHelp reports whether args contain -h or --help.
func askedForHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if _, name, _, _, ok := splitFlag(a); ok && (name == helpName || name == helpShort) {
			return true
		}
	}
	return false
}

// unexpectedArgs reports each positional argument.
func unexpectedArgs(args []string) []error {
	errs := make([]error, 0, len(args))
	for _, a := range args {
		errs = append(errs, unexpectedArg(a, nil, nil))
	}
	return errs
}

// unexpectedArg reports a positional argument; after a switch written
// without "=" it suggests the "=" form.
func unexpectedArg(arg string, before []string, s *Set) error {
	hint := ""
	if len(before) > 0 && s != nil {
		if written, name, _, has, ok := splitFlag(before[len(before)-1]); ok && !has {
			if e := s.lookup(name); e != nil && isBool(e.Value) {
				hint = fmt.Sprintf(" (a switch takes its value after \"=\": %s=%s)", written, arg)
			}
		}
	}
	return &Error{Source: FromFlag, Where: fmt.Sprintf("argument %q", arg),
		Err: fmt.Errorf("%w: unexpected argument%s", ErrSyntax, hint)}
}

// scanEnv reads PROGRAM_* variables. Variables whose suffix is not made of
// letters, digits and underscores, ignored ones, PROGRAM_CONFIG and empty
// values are skipped; any other unknown name is an error, as is one option
// set by two variables (a name and its synonym).
func (s *Set) scanEnv(environ []string) ([]assignment, []error) {
	var (
		assigns []assignment
		errs    []error
		seen    = map[*entry]string{}
	)
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, s.envPrefix) || v == "" || !s.optionLikeEnv(k) {
			continue
		}
		where := "env " + k
		name := strings.ToLower(strings.ReplaceAll(k[len(s.envPrefix):], "_", "-"))
		e := s.lookup(name)
		switch {
		case e == nil:
			errs = append(errs, &Error{Source: FromEnv, Where: where,
				Err: fmt.Errorf("%w%s", ErrUnknownOption, s.suggest(name, FromEnv))})
		case seen[e] != "":
			errs = append(errs, &Error{Source: FromEnv, Where: where, Option: e.Name,
				Err: fmt.Errorf("%w: %s is also set by %s", ErrSyntax, e.Name, seen[e])})
		default:
			seen[e] = k
			assigns = append(assigns, assignment{e: e, value: v, source: FromEnv, where: where})
		}
	}
	return assigns, errs
}

// optionLikeEnv reports whether a PROGRAM_* variable should name an
// option: its suffix is letters, digits and underscores, it is not
// PROGRAM_CONFIG, and IgnoreEnv does not cover it.
func (s *Set) optionLikeEnv(k string) bool {
	suffix := k[len(s.envPrefix):]
	if suffix == "" || k == s.EnvVar(configName) {
		return false
	}
	for _, c := range suffix {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	for _, pat := range s.ignoredEnv {
		if k == pat || (strings.HasSuffix(pat, "*") && strings.HasPrefix(k, strings.TrimSuffix(pat, "*"))) {
			return false
		}
	}
	return true
}

// suggest returns " (did you mean X?)" for the known name closest to name,
// spelled for the source, or "".
func (s *Set) suggest(name string, src Source) string {
	best, bestDist := "", 3
	for known := range s.byName {
		if d := editDistance(name, known); d < bestDist || (d == bestDist && known < best) {
			best, bestDist = known, d
		}
	}
	if best == "" || bestDist > len(name)/2 {
		return ""
	}
	switch src {
	case FromFlag:
		return fmt.Sprintf(" (did you mean %s?)", flagSpelling(best))
	case FromEnv:
		return fmt.Sprintf(" (did you mean %s?)", s.EnvVar(best))
	default:
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
}

// flagSpelling writes a name as a flag: -p for one letter, --port else.
func flagSpelling(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
