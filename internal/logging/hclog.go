package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/hashicorp/go-hclog"
)

// NameKey is the attribute that carries an hclog logger's name (set with
// Named or ResetNamed); it is omitted while the name is empty.
const NameKey = "logger"

// hclogLevels maps hclog's levels to slog's: Trace → DEBUG, Debug →
// VERBOSE, Info → NOTICE, Warn → WARNING, Error → ERROR. Indexed by
// hclog.Level; NoLevel logs as Info, Off never logs.
var hclogLevels = [...]slog.Level{
	hclog.NoLevel: LevelNotice,
	hclog.Trace:   LevelDebug,
	hclog.Debug:   LevelVerbose,
	hclog.Info:    LevelNotice,
	hclog.Warn:    LevelWarning,
	hclog.Error:   LevelError,
}

// hcLogger implements hclog.Logger over a slog.Logger. Key/value pairs
// become slog attributes; the slog handler decides what is shown, and
// SetLevel can only raise that threshold further.
type hcLogger struct {
	base    *slog.Logger // the logger given to NewHCLogger
	logger  *slog.Logger // base with the name and the implied args
	name    string
	implied []any
	// level is the SetLevel floor, shared by every logger derived from
	// one NewHCLogger (as hclog shares it); hclog.NoLevel means none.
	level *atomic.Int32
}

var _ hclog.Logger = (*hcLogger)(nil)

// NewHCLogger returns an hclog.Logger whose records go to l. Use it for
// raft.Config.Logger, raft.NetworkTransportConfig.Logger and
// raft.NewFileSnapshotStoreWithLogger.
func NewHCLogger(l *slog.Logger) hclog.Logger {
	lvl := &atomic.Int32{}
	lvl.Store(int32(hclog.NoLevel))
	return &hcLogger{base: l, logger: l, level: lvl}
}

// derive returns a copy with a new name and implied args.
func (h *hcLogger) derive(name string, implied []any) *hcLogger {
	l := h.base
	if name != "" {
		l = l.With(NameKey, name)
	}
	if len(implied) > 0 {
		l = l.With(toAttrs(implied)...)
	}
	return &hcLogger{base: h.base, logger: l, name: name, implied: implied, level: h.level}
}

// Log emits a record at an hclog level.
func (h *hcLogger) Log(level hclog.Level, msg string, args ...any) { h.emit(level, msg, args, 3) }

// Trace emits at DEBUG.
func (h *hcLogger) Trace(msg string, args ...any) { h.emit(hclog.Trace, msg, args, 3) }

// Debug emits at VERBOSE.
func (h *hcLogger) Debug(msg string, args ...any) { h.emit(hclog.Debug, msg, args, 3) }

// Info emits at NOTICE.
func (h *hcLogger) Info(msg string, args ...any) { h.emit(hclog.Info, msg, args, 3) }

// Warn emits at WARNING.
func (h *hcLogger) Warn(msg string, args ...any) { h.emit(hclog.Warn, msg, args, 3) }

// Error emits at ERROR.
func (h *hcLogger) Error(msg string, args ...any) { h.emit(hclog.Error, msg, args, 3) }

// emit builds and handles a record. skip counts the frames between
// runtime.Callers and the caller to report; 0 reports no caller.
func (h *hcLogger) emit(level hclog.Level, msg string, args []any, skip int) {
	if !h.enabled(level) {
		return
	}
	var pc uintptr
	if skip > 0 {
		var pcs [1]uintptr
		runtime.Callers(skip, pcs[:])
		pc = pcs[0]
	}
	r := slog.NewRecord(time.Now(), slogLevel(level), msg, pc)
	r.Add(toAttrs(args)...)
	_ = h.logger.Handler().Handle(context.Background(), r)
}

// slogLevel converts an hclog level (Off maps above Error).
func slogLevel(l hclog.Level) slog.Level {
	if l >= 0 && int(l) < len(hclogLevels) {
		return hclogLevels[l]
	}
	return LevelError + 1
}

// enabled reports whether a record at level would be shown: it passes the
// SetLevel floor, if any, and the slog handler's own threshold.
func (h *hcLogger) enabled(level hclog.Level) bool {
	if level == hclog.Off {
		return false
	}
	if floor := hclog.Level(h.level.Load()); floor != hclog.NoLevel && level < floor {
		return false
	}
	return h.logger.Enabled(context.Background(), slogLevel(level))
}

// IsTrace reports whether Trace records are shown.
func (h *hcLogger) IsTrace() bool { return h.enabled(hclog.Trace) }

// IsDebug reports whether Debug records are shown.
func (h *hcLogger) IsDebug() bool { return h.enabled(hclog.Debug) }

// IsInfo reports whether Info records are shown.
func (h *hcLogger) IsInfo() bool { return h.enabled(hclog.Info) }

// IsWarn reports whether Warn records are shown.
func (h *hcLogger) IsWarn() bool { return h.enabled(hclog.Warn) }

// IsError reports whether Error records are shown.
func (h *hcLogger) IsError() bool { return h.enabled(hclog.Error) }

// ImpliedArgs returns the key/value pairs added by With.
func (h *hcLogger) ImpliedArgs() []any { return slices.Clone(h.implied) }

// With returns a logger that adds args to every record. As in hclog, a
// key given again replaces the earlier value.
func (h *hcLogger) With(args ...any) hclog.Logger {
	implied := slices.Clone(h.implied)
	for i := 0; i < len(args); i += 2 {
		key, val := pair(args, i)
		if j := indexKey(implied, key); j >= 0 {
			implied[j+1] = val
		} else {
			implied = append(implied, key, val)
		}
	}
	return h.derive(h.name, implied)
}

// indexKey finds key among the even positions of kv, or returns -1.
func indexKey(kv []any, key string) int {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == key {
			return i
		}
	}
	return -1
}

// Name returns the logger's name ("" unless Named or ResetNamed).
func (h *hcLogger) Name() string { return h.name }

// Named returns a logger whose name is this one's plus "." plus name.
func (h *hcLogger) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.derive(name, h.implied)
}

// ResetNamed returns a logger with exactly this name.
func (h *hcLogger) ResetNamed(name string) hclog.Logger { return h.derive(name, h.implied) }

// SetLevel sets a floor below which nothing is logged, for this logger and
// every logger derived from the same NewHCLogger. hclog.NoLevel removes
// it, leaving only the slog handler's threshold; hclog.Off silences all.
func (h *hcLogger) SetLevel(level hclog.Level) { h.level.Store(int32(level)) }

// GetLevel returns the SetLevel floor if one is set, else the lowest hclog
// level the slog handler shows (hclog.Off if it shows none).
func (h *hcLogger) GetLevel() hclog.Level {
	if floor := hclog.Level(h.level.Load()); floor != hclog.NoLevel {
		return floor
	}
	for l := hclog.Trace; l <= hclog.Error; l++ {
		if h.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

// StandardLogger returns a *log.Logger whose lines become records through
// StandardWriter.
func (h *hcLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer that logs each write as one record: at
// opts.ForceLevel if set (dropping any "[LEVEL]" prefix), at the level of
// its "[LEVEL]" prefix with opts.InferLevels (after a leading timestamp
// with InferLevelsWithTimestamp), else at Info.
func (h *hcLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	w := &stdWriter{log: h}
	if opts != nil {
		w.opts = *opts
	}
	return w
}

// stdWriter turns writes from a standard library logger into records.
type stdWriter struct {
	log  *hcLogger
	opts hclog.StandardLoggerOptions
}

// Write logs p, without its trailing newline, as one record.
func (w *stdWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRightFunc(p, unicode.IsSpace))
	level := hclog.Info
	if w.opts.InferLevelsWithTimestamp {
		msg = trimTimestamp(msg)
	}
	if inferred, rest, ok := levelPrefix(msg); ok && (w.opts.InferLevels || w.opts.ForceLevel != hclog.NoLevel) {
		level, msg = inferred, rest
	}
	if w.opts.ForceLevel != hclog.NoLevel {
		level = w.opts.ForceLevel
	}
	w.log.emit(level, msg, nil, 0)
	return len(p), nil
}

// levelPrefixes are the "[LEVEL]" tags a standard logger line may start
// with.
var levelPrefixes = [...]struct {
	tag   string
	level hclog.Level
}{
	{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
	{"[WARN]", hclog.Warn}, {"[ERROR]", hclog.Error}, {"[ERR]", hclog.Error},
}

// levelPrefix splits a leading "[LEVEL]" tag off msg.
func levelPrefix(msg string) (hclog.Level, string, bool) {
	for _, p := range levelPrefixes {
		if rest, ok := strings.CutPrefix(msg, p.tag); ok {
			return p.level, strings.TrimSpace(rest), true
		}
	}
	return hclog.NoLevel, msg, false
}

// trimTimestamp drops a leading date and time such as "2024/01/02
// 15:04:05.000000 " or "2024-01-02T15:04:05.000Z ": everything before the
// first character that cannot be part of one.
func trimTimestamp(msg string) string {
	return strings.TrimLeftFunc(msg, func(r rune) bool {
		return unicode.IsDigit(r) || strings.ContainsRune(" :/.+-TZ", r)
	})
}

// toAttrs converts hclog key/value pairs to slog attributes. A trailing
// key without a value is kept under hclog.MissingKey, as hclog does, and
// a trailing captured stack trace under "stacktrace".
func toAttrs(args []any) []any {
	attrs := make([]any, 0, (len(args)+1)/2)
	for i := 0; i < len(args); i += 2 {
		key, val := pair(args, i)
		attrs = append(attrs, slog.Attr{Key: key, Value: toValue(val)})
	}
	return attrs
}

// pair returns the key and value at args[i], args[i+1], handling a lone
// trailing element.
func pair(args []any, i int) (string, any) {
	if i+1 == len(args) {
		if st, ok := args[i].(hclog.CapturedStacktrace); ok {
			return "stacktrace", st
		}
		return hclog.MissingKey, args[i]
	}
	if k, ok := args[i].(string); ok {
		return k, args[i+1]
	}
	return fmt.Sprint(args[i]), args[i+1]
}

// toValue converts an hclog value: hclog's formatting wrappers become the
// strings hclog would print; slog's own kinds, errors, log valuers and
// text marshalers stay as they are; other Stringers become their String.
func toValue(v any) slog.Value {
	switch x := v.(type) {
	case hclog.Format:
		return slog.StringValue(formatValue(x))
	case hclog.Hex:
		return slog.StringValue("0x" + strconv.FormatUint(uint64(x), 16))
	case hclog.Octal:
		return slog.StringValue("0" + strconv.FormatUint(uint64(x), 8))
	case hclog.Binary:
		return slog.StringValue("0b" + strconv.FormatUint(uint64(x), 2))
	case hclog.Quote:
		return slog.StringValue(string(x))
	case hclog.CapturedStacktrace:
		return slog.StringValue(string(x))
	}
	sv := slog.AnyValue(v)
	if sv.Kind() != slog.KindAny {
		return sv
	}
	switch x := v.(type) {
	case error, slog.LogValuer, interface{ MarshalText() ([]byte, error) }:
		return sv
	case fmt.Stringer:
		return slog.StringValue(fmt.Sprint(x))
	}
	return sv
}

// formatValue renders hclog.Fmt(format, args...).
func formatValue(f hclog.Format) string {
	if len(f) == 0 {
		return ""
	}
	if format, ok := f[0].(string); ok {
		return fmt.Sprintf(format, f[1:]...)
	}
	return fmt.Sprint(f...)
}
