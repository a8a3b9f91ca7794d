package resp

// splitInline splits an inline request line the way Redis's sdssplitargs
// does and appends the arguments to argv. Quoted arguments are unescaped in
// place (an argument is never longer than its quoted form), so every
// argument aliases line. It reports false for unbalanced quotes.
//
// The rules: blanks (isspace) separate arguments; outside quotes only space,
// tab, "\r" and "\n" end an argument. A double or single quote may open
// anywhere in an argument. Inside double quotes, \xHH is a byte and \n \r \t
// \b \a stand for themselves' control characters, any other escaped byte for
// itself; inside single quotes only \' is an escape. A closing quote must be
// followed by a blank or the end of the line.
func splitInline(line []byte, argv [][]byte) ([][]byte, bool) {
	p := 0
	for {
		for p < len(line) && isSpace(line[p]) {
			p++
		}
		if p == len(line) {
			return argv, true
		}
		start := p
		end, next, ok := inlineToken(line, p)
		if !ok {
			return argv, false
		}
		argv = append(argv, line[start:end:end])
		p = next
	}
}

// inlineToken unescapes the argument starting at line[p] in place. It
// returns the end of the unescaped bytes (which start at p), the position
// to continue from, and false for unbalanced quotes.
func inlineToken(line []byte, p int) (end, next int, ok bool) {
	w := p
	for p < len(line) {
		switch c := line[p]; c {
		case ' ', '\n', '\r', '\t':
			return w, p + 1, true
		case '"':
			if w, p, ok = doubleQuoted(line, w, p+1); !ok {
				return 0, 0, false
			}
			return w, p, true
		case '\'':
			if w, p, ok = singleQuoted(line, w, p+1); !ok {
				return 0, 0, false
			}
			return w, p, true
		default:
			line[w] = c
			w++
			p++
		}
	}
	return w, p, true
}

// doubleQuoted unescapes a double-quoted part starting after its quote at
// line[p], writing at line[w]. It returns the new write and read positions
// (past the closing quote) and false for unbalanced quotes.
func doubleQuoted(line []byte, w, p int) (int, int, bool) {
	n := len(line)
	for p < n {
		c := line[p]
		switch {
		case c == '\\' && p+3 < n && line[p+1] == 'x' && isHex(line[p+2]) && isHex(line[p+3]):
			line[w] = unhex(line[p+2])<<4 | unhex(line[p+3])
			p += 4
		case c == '\\' && p+1 < n:
			line[w] = unescape(line[p+1])
			p += 2
		case c == '"':
			return w, p + 1, closedQuote(line, p)
		default:
			line[w] = c
			p++
		}
		w++
	}
	return 0, 0, false
}

// singleQuoted is doubleQuoted for single quotes, where only \' escapes.
func singleQuoted(line []byte, w, p int) (int, int, bool) {
	n := len(line)
	for p < n {
		c := line[p]
		switch {
		case c == '\\' && p+1 < n && line[p+1] == '\'':
			line[w] = '\''
			p += 2
		case c == '\'':
			return w, p + 1, closedQuote(line, p)
		default:
			line[w] = c
			p++
		}
		w++
	}
	return 0, 0, false
}

// closedQuote reports whether the closing quote at line[p] is followed by a
// blank or the end of the line, as sdssplitargs requires.
func closedQuote(line []byte, p int) bool {
	return p+1 == len(line) || isSpace(line[p+1])
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r') // \t \n \v \f \r
}

// isHex reports whether c is a hexadecimal digit.
func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// unhex is the value of the hexadecimal digit c.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// unescape is the byte a backslash escape inside double quotes stands for.
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
