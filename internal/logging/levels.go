// Package logging holds redraft's log levels, named after Redis's.
package logging

import "log/slog"

// Redis's log levels as slog levels: warning and notice are slog's warn and
// info; verbose sits between notice and debug.
const (
	LevelWarning = slog.LevelWarn
	LevelNotice  = slog.LevelInfo
	LevelVerbose = slog.Level(-2)
	LevelDebug   = slog.LevelDebug
)
