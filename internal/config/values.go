package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// stringValue is a free-form string option.
type stringValue struct{ p *string }

// String declares a string option with default def, stored in *p.
func String(p *string, def string) Value {
	*p = def
	return stringValue{p}
}

func (v stringValue) Set(s string) error { *v.p = s; return nil }
func (v stringValue) String() string     { return *v.p }
func (v stringValue) Kind() string       { return "string" }
func (v stringValue) Allowed() string    { return "any string" }

// intValue is an integer option with an inclusive range.
type intValue struct {
	p        *int
	min, max int
}

// Int declares an integer option with default def, stored in *p.
func Int(p *int, def int) Value {
	return IntRange(p, def, math.MinInt, math.MaxInt)
}

// IntRange declares an integer option accepting min through max.
func IntRange(p *int, def, min, max int) Value {
	*p = def
	return intValue{p: p, min: min, max: max}
}

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return errors.New("not an integer")
	}
	if n < v.min || n > v.max {
		return errors.New("out of range")
	}
	*v.p = n
	return nil
}

func (v intValue) String() string { return strconv.Itoa(*v.p) }
func (v intValue) Kind() string   { return "int" }

func (v intValue) Allowed() string {
	switch {
	case v.min == math.MinInt && v.max == math.MaxInt:
		return "an integer"
	case v.max == math.MaxInt:
		return fmt.Sprintf("an integer of at least %d", v.min)
	default:
		return fmt.Sprintf("an integer from %d to %d", v.min, v.max)
	}
}

// uint64Value is a non-negative integer option.
type uint64Value struct{ p *uint64 }

// Uint64 declares a non-negative integer option with default def.
func Uint64(p *uint64, def uint64) Value {
	*p = def
	return uint64Value{p}
}

func (v uint64Value) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return errors.New("not a non-negative integer")
	}
	*v.p = n
	return nil
}

func (v uint64Value) String() string  { return strconv.FormatUint(*v.p, 10) }
func (v uint64Value) Kind() string    { return "uint" }
func (v uint64Value) Allowed() string { return "a non-negative integer" }

// boolVal is a switch.
type boolVal struct{ p *bool }

// Bool declares a switch with default def. It accepts yes/no, true/false,
// on/off and 1/0 (any case); a flag without a value means yes.
func Bool(p *bool, def bool) Value {
	*p = def
	return boolVal{p}
}

func (v boolVal) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "true", "on", "1":
		*v.p = true
	case "no", "false", "off", "0":
		*v.p = false
	default:
		return errors.New("not a boolean")
	}
	return nil
}

// String spells the value as Redis's config does: yes or no.
func (v boolVal) String() string {
	if *v.p {
		return "yes"
	}
	return "no"
}

func (v boolVal) Kind() string    { return "bool" }
func (v boolVal) Allowed() string { return "yes or no (also true/false, on/off, 1/0)" }
func (v boolVal) IsBool() bool    { return true }

// durationValue is a non-negative time.Duration option.
type durationValue struct{ p *time.Duration }

// Duration declares a duration option ("500ms", "10s", "1m30s") with
// default def. Negative durations are refused.
func Duration(p *time.Duration, def time.Duration) Value {
	*p = def
	return durationValue{p}
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return errors.New("not a duration")
	}
	if d < 0 {
		return errors.New("negative")
	}
	*v.p = d
	return nil
}

func (v durationValue) String() string  { return v.p.String() }
func (v durationValue) Kind() string    { return "duration" }
func (v durationValue) Allowed() string { return "a duration with a unit, such as 500ms, 10s or 1m30s" }

// sizeValue is a byte count written as Redis writes memory sizes.
type sizeValue struct{ p *int64 }

// Size declares a byte size with default def. Like redis.conf it accepts
// a plain number of bytes or a number with a unit: k, m, g, t are powers
// of 1000 and kb, mb, gb, tb powers of 1024 (any case), e.g. "512mb".
func Size(p *int64, def int64) Value {
	*p = def
	return sizeValue{p}
}

func (v sizeValue) Set(s string) error {
	n, err := ParseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

// String uses the largest binary unit that divides the size exactly.
func (v sizeValue) String() string { return FormatSize(*v.p) }

func (v sizeValue) Kind() string { return "size" }
func (v sizeValue) Allowed() string {
	return "a number of bytes, optionally with a unit: k, m, g (×1000) or kb, mb, gb (×1024), e.g. 512mb"
}

// sizeUnits maps a size suffix to its multiplier, longest suffixes first
// so that "kb" is tried before "b".
var sizeUnits = [...]struct {
	suffix string
	mult   int64
}{
	{"tb", 1 << 40}, {"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10},
	{"t", 1e12}, {"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"b", 1},
}

// ParseSize reads a non-negative byte size such as "100", "64kb", "2g".
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("not a size")
	}
	if n > math.MaxInt64/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

// FormatSize spells a byte size with the largest binary unit that divides
// it exactly ("512mb"), or as plain bytes.
func FormatSize(n int64) string {
	for _, u := range sizeUnits[:4] {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// enumValue is a string restricted to a list.
type enumValue struct {
	p       *string
	allowed []string
}

// Enum declares an option whose value is one of allowed (matched without
// regard to case and stored as declared) with default def. It panics if
// def is not allowed.
func Enum(p *string, def string, allowed ...string) Value {
	v := enumValue{p: p, allowed: allowed}
	if err := v.Set(def); err != nil {
		panic(fmt.Sprintf("config: enum default %q is not one of %v", def, allowed))
	}
	return v
}

func (v enumValue) Set(s string) error {
	t := strings.TrimSpace(s)
	for _, a := range v.allowed {
		if strings.EqualFold(a, t) {
			*v.p = a
			return nil
		}
	}
	return errors.New("not allowed")
}

func (v enumValue) String() string  { return *v.p }
func (v enumValue) Kind() string    { return strings.Join(v.allowed, "|") }
func (v enumValue) Allowed() string { return "one of " + strings.Join(v.allowed, ", ") }

// listValue is a comma-separated list of strings.
type listValue struct{ p *[]string }

// List declares a comma-separated list option ("a:1,b:2") with default
// def. Spaces around items are trimmed and empty items dropped; a later
// source replaces the whole list.
func List(p *[]string, def ...string) Value {
	*p = append([]string(nil), def...)
	return listValue{p}
}

func (v listValue) Set(s string) error {
	var items []string
	for _, it := range strings.Split(s, ",") {
		if it = strings.TrimSpace(it); it != "" {
			items = append(items, it)
		}
	}
	*v.p = items
	return nil
}

func (v listValue) String() string  { return strings.Join(*v.p, ",") }
func (v listValue) Kind() string    { return "a,b,…" }
func (v listValue) Allowed() string { return "a comma-separated list" }
