package config

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Layout of the help: names at helpIndent, text at textIndent, lines at
// most helpWidth columns.
const (
	helpWidth  = 80
	helpIndent = "  "
	textIndent = "      "
)

// printHelp writes the help to Output and returns ErrHelp.
func (s *Set) printHelp() error {
	if err := s.WriteHelp(s.output()); err != nil {
		return fmt.Errorf("%w: %w", ErrHelp, err)
	}
	return ErrHelp
}

// WriteHelp writes the Usage text, the general flags, every option grouped
// by Group (in declaration order within a group) and a note on the
// environment and the config file, wrapped for an 80-column terminal.
func (s *Set) WriteHelp(w io.Writer) error {
	bw := bufio.NewWriter(w)
	if s.Usage != "" {
		bw.WriteString(strings.TrimRight(s.Usage, "\n") + "\n\n")
	}
	s.writeGeneral(bw)
	for g := range groupNames {
		s.writeGroup(bw, Group(g))
	}
	writeWrapped(bw, "", s.footer())
	return bw.Flush()
}

// writeGeneral lists the flags the Set handles itself.
func (s *Set) writeGeneral(w *bufio.Writer) {
	w.WriteString("General:\n")
	writeItem(w, "--config <file>", fmt.Sprintf(
		"Read options from this file, one \"name value\" per line as in redis.conf. Also %s=<file>.",
		s.EnvVar(configName)))
	writeItem(w, "-h, --help", "Show this help and exit.")
	if s.Version != nil {
		writeItem(w, "--version", "Show the version and exit.")
	}
	w.WriteString("\n")
}

// writeGroup lists one group's options, if it has any.
func (s *Set) writeGroup(w *bufio.Writer, g Group) {
	var n int
	for _, e := range s.entries {
		if e.Group != g {
			continue
		}
		if n == 0 {
			w.WriteString(g.String() + ":\n")
		}
		n++
		writeItem(w, e.flagLine(), strings.TrimSpace(e.Help))
		writeMeta(w, e.defaultText(), e.exampleText())
	}
	if n > 0 {
		w.WriteString("\n")
	}
}

// writeItem writes a flag line and its wrapped text.
func writeItem(w *bufio.Writer, flags, text string) {
	w.WriteString(helpIndent + flags + "\n")
	writeWrapped(w, textIndent, text)
}

// flagLine spells the option's names and argument: "-p, --port <int>".
func (e *entry) flagLine() string {
	var short, long []string
	for _, n := range append([]string{e.Name}, e.Synonyms...) {
		if len(n) == 1 {
			short = append(short, "-"+n)
		} else {
			long = append(long, "--"+n)
		}
	}
	line := strings.Join(append(short, long...), ", ")
	if isBool(e.Value) {
		return line
	}
	arg := e.Arg
	if arg == "" {
		arg = e.Value.Kind()
	}
	return line + " <" + arg + ">"
}

// writeMeta writes "Default: d. Example: ex" under an option's text, on
// two lines when one would be too long; neither part is broken.
func writeMeta(w *bufio.Writer, def, example string) {
	var parts []string
	if def != "" {
		parts = append(parts, "Default: "+def+".")
	}
	if example != "" {
		parts = append(parts, "Example: "+example)
	}
	if line := strings.Join(parts, " "); len(textIndent)+len(line) <= helpWidth {
		parts = []string{line}
	}
	for _, p := range parts {
		if p != "" {
			w.WriteString(textIndent + p + "\n")
		}
	}
}

// defaultText is the default as the help shows it; "" shows none.
func (e *entry) defaultText() string {
	switch {
	case e.DefaultText != "":
		return e.DefaultText
	case isBool(e.Value) && e.def == "no":
		return "off"
	case isBool(e.Value):
		return "on"
	}
	return e.def
}

// exampleText renders Example as a command-line fragment.
func (e *entry) exampleText() string {
	switch {
	case e.Example == "":
		return ""
	case strings.HasPrefix(e.Example, "-"):
		return e.Example
	}
	return flagSpelling(e.Name) + " " + e.Example
}

// footer explains the other sources, with an example from the first
// option that has an example value.
func (s *Set) footer() string {
	name, value := "port", "7481"
	for _, e := range s.entries {
		if e.Example != "" && !strings.HasPrefix(e.Example, "-") {
			name, value = e.Name, e.Example
			break
		}
	}
	return fmt.Sprintf("Every option can also be set in the environment as %s<NAME>, the name "+
		"in upper case with dashes as underscores (%s=%s), or in the --config file "+
		"as a line \"%s %s\". Flags win over the environment, which wins over the "+
		"file. Flags take one dash or two, and a value after a space or \"=\"; "+
		"switches are turned on by --name and off by --name=no.",
		s.envPrefix, s.EnvVar(name), value, name, value)
}

// writeWrapped writes text word-wrapped to helpWidth, each line prefixed
// by indent. A word longer than the line stays whole.
func writeWrapped(w *bufio.Writer, indent, text string) {
	width := helpWidth - len(indent)
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			w.WriteString(indent + line + "\n")
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		w.WriteString(indent + line + "\n")
	}
}
