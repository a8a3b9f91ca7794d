package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// maxLine bounds one config file line (Redis has no limit; 1 MiB is
// plenty for certificates pasted inline).
const maxLine = 1 << 20

// readFile reads a Redis-style config file: one "name value" per line,
// "#" starting a comment line, blank lines ignored, values optionally
// quoted. where names who asked for the file, for the open error.
func (s *Set) readFile(path, where string) ([]assignment, []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{&Error{Source: FromFile, Where: where,
			Err: fmt.Errorf("config file: %w", err)}}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	var (
		assigns []assignment
		errs    []error
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for n := 1; sc.Scan(); n++ {
		a, err := s.fileLine(sc.Text(), fmt.Sprintf("%s:%d", path, n))
		switch {
		case err != nil:
			errs = append(errs, err)
		case a != nil:
			assigns = append(assigns, *a)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &Error{Source: FromFile, Where: path, Err: fmt.Errorf("read config file: %w", err)})
	}
	return assigns, errs
}

// fileLine parses one line; it returns nil, nil for blank and comment
// lines.
func (s *Set) fileLine(line, where string) (*assignment, error) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return nil, nil
	}
	fail := func(option string, err error) error {
		return &Error{Source: FromFile, Where: where, Option: option, Err: err}
	}
	words, err := SplitArgs(line)
	if err != nil {
		return nil, fail("", err)
	}
	name := strings.ToLower(words[0])
	e := s.lookup(name)
	switch {
	case name == configName:
		return nil, fail("", fmt.Errorf("%w: a config file cannot name another config file", ErrSyntax))
	case e == nil:
		return nil, fail("", fmt.Errorf("%w %q%s", ErrUnknownOption, words[0], s.suggest(name, FromFile)))
	case len(words) == 1:
		return nil, fail(e.Name, fmt.Errorf("%w: %s needs a value (e.g. %s %s)", ErrMissingValue, words[0], e.Name, exampleValue(e)))
	case len(words) > 2:
		return nil, fail(e.Name, fmt.Errorf("%w: %s takes one value, not %d (quote a value that has spaces)", ErrSyntax, words[0], len(words)-1))
	}
	return &assignment{e: e, value: words[1], source: FromFile, where: where}, nil
}

// exampleValue is a value to show in a "needs a value" message.
func exampleValue(e *entry) string {
	if e.Example != "" && !strings.HasPrefix(e.Example, "-") {
		return quoteIfNeeded(e.Example)
	}
	return quoteIfNeeded(e.def)
}

// quoteIfNeeded quotes a value that SplitArgs would not read back as one
// word.
func quoteIfNeeded(v string) string {
	if w, err := SplitArgs(v); err == nil && len(w) == 1 && w[0] == v {
		return v
	}
	return strconv.Quote(v)
}

// SplitArgs splits a line into words the way redis.conf is read. Words are
// separated by spaces or tabs. Inside double quotes, \n \r \t \b \a, \xHH
// and a backslash before any other character are escapes; inside single
// quotes only \' is. A closing quote must end the word. Quotes may also
// start mid-word: ab"c d" is the word `abc d`.
func SplitArgs(line string) ([]string, error) {
	var words []string
	for i := 0; ; {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return words, nil
		}
		word, next, err := readWord(line, i)
		if err != nil {
			return nil, err
		}
		words = append(words, word)
		i = next
	}
}

// readWord reads the word starting at line[i] and returns it with the
// index just past it.
func readWord(line string, i int) (string, int, error) {
	var b strings.Builder
	for i < len(line) && !isSpace(line[i]) {
		var err error
		switch line[i] {
		case '"':
			i, err = readDoubleQuoted(line, i+1, &b)
		case '\'':
			i, err = readSingleQuoted(line, i+1, &b)
		default:
			b.WriteByte(line[i])
			i++
		}
		if err != nil {
			return "", 0, err
		}
	}
	return b.String(), i, nil
}

// readDoubleQuoted appends the body of a "…" string starting at line[i]
// (just past the opening quote) and returns the index past the closing
// quote.
func readDoubleQuoted(line string, i int, b *strings.Builder) (int, error) {
	for ; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
			v, _ := strconv.ParseUint(line[i+2:i+4], 16, 8)
			b.WriteByte(byte(v))
			i += 3
		case c == '\\' && i+1 < len(line):
			i++
			b.WriteByte(unescape(line[i]))
		case c == '"':
			return closeQuote(line, i+1)
		default:
			b.WriteByte(c)
		}
	}
	return 0, fmt.Errorf("%w: unbalanced double quotes", ErrSyntax)
}

// readSingleQuoted appends the body of a '…' string, where only \' is an
// escape.
func readSingleQuoted(line string, i int, b *strings.Builder) (int, error) {
	for ; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '\'':
			i++
			b.WriteByte('\'')
		case line[i] == '\'':
			return closeQuote(line, i+1)
		default:
			b.WriteByte(line[i])
		}
	}
	return 0, fmt.Errorf("%w: unbalanced single quotes", ErrSyntax)
}

// closeQuote checks that a closing quote is followed by a space or the end
// of the line, as Redis requires.
func closeQuote(line string, i int) (int, error) {
	if i < len(line) && !isSpace(line[i]) {
		return 0, fmt.Errorf("%w: a closing quote must be followed by a space", ErrSyntax)
	}
	return i, nil
}

// unescape maps the character after a backslash in "…".
func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}
func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
