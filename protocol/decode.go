package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The telemetry decoder is written for this one message shape: one pass
// over the payload, no reflection, one allocation per point id. It is
// strict where encoding/json is lenient, because a lenient centre lets a
// broken or hostile gateway be read two ways:
//
//   - a key given twice is refused (encoding/json keeps the last one);
//   - keys match exactly: "SITE" or "Readings" are unknown keys, not
//     site and readings;
//   - nothing but white space may follow the message's object;
//   - strings must be valid UTF-8, and \u escapes valid UTF-16.
//
// Problems of one reading are kept on the reading (see Reading.Check), so
// the good readings beside it are stored; problems of the envelope or of
// the JSON itself refuse the message.

// maxDepth bounds the nesting of values the decoder skips over (an
// unknown field's value): deeper payloads are refused, not recursed into.
const maxDepth = 64

// syntaxErr is a payload that is not JSON; off is the byte offset.
type syntaxErr struct {
	off int
	msg string
}

func (e *syntaxErr) Error() string { return fmt.Sprintf("at byte %d: %s", e.off, e.msg) }

type scanner struct {
	b []byte
	i int
}

func (s *scanner) syntax(format string, args ...any) error {
	return &syntaxErr{off: s.i, msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte, 0 at the end.
func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) unexpected(what string) error {
	if s.i >= len(s.b) {
		return s.syntax("payload ends where %s should be", what)
	}
	return s.syntax("%q where %s should be", s.b[s.i], what)
}

// str reads a string at s.i (which is '"') and returns its contents; they
// point into the payload unless the string holds escapes.
func (s *scanner) str() ([]byte, error) {
	start := s.i + 1
	ascii := true
	for i := start; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			raw := s.b[start:i]
			if !ascii && !utf8.Valid(raw) {
				return nil, s.syntax("string is not valid UTF-8")
			}
			s.i = i + 1
			return raw, nil
		case c == '\\':
			return s.strEscaped(start, i)
		case c < 0x20:
			s.i = i
			return nil, s.syntax("control character %#x in a string (escape it)", c)
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	s.i = len(s.b)
	return nil, s.syntax("string not terminated")
}

// strEscaped finishes a string that holds an escape at esc.
func (s *scanner) strEscaped(start, esc int) ([]byte, error) {
	out := make([]byte, 0, esc-start+16)
	out = append(out, s.b[start:esc]...)
	i := esc
	for i < len(s.b) {
		c := s.b[i]
		switch {
		case c == '"':
			if !utf8.Valid(out) {
				s.i = start
				return nil, s.syntax("string is not valid UTF-8")
			}
			s.i = i + 1
			return out, nil
		case c < 0x20:
			s.i = i
			return nil, s.syntax("control character %#x in a string (escape it)", c)
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(s.b) {
			break
		}
		e := s.b[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s.b, i)
			if !ok {
				s.i = i - 2
				return nil, s.syntax(`bad \u escape`)
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if i+6 <= len(s.b) && s.b[i] == '\\' && s.b[i+1] == 'u' {
					r2, ok = hex4(s.b, i+2)
				}
				if r = utf16.DecodeRune(r, r2); !ok || r == utf8.RuneError {
					s.i = i - 6
					return nil, s.syntax(`\u escape is half a UTF-16 surrogate pair`)
				}
				i += 6
			}
			out = utf8.AppendRune(out, r)
		default:
			s.i = i - 2
			return nil, s.syntax("unknown escape \\%c", e)
		}
	}
	s.i = len(s.b)
	return nil, s.syntax("string not terminated")
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a JSON number and returns its text; integer says it has no
// fraction and no exponent.
func (s *scanner) number() (raw []byte, integer bool, err error) {
	start, i := s.i, s.i
	b := s.b
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	default:
		s.i = i
		return nil, false, s.unexpected("a digit")
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.i = i
			return nil, false, s.unexpected("a digit after the decimal point")
		}
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.i = i
			return nil, false, s.unexpected("a digit of the exponent")
		}
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	}
	s.i = i
	return b[start:i], integer, nil
}

// literal reads true, false or null.
func (s *scanner) literal(word string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return s.unexpected("a value")
	}
	s.i += len(word)
	return nil
}

// skip reads over any value, checking its syntax.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return s.syntax("values nested deeper than %d", maxDepth)
	}
	switch c := s.peek(); c {
	case '"':
		_, err := s.str()
		return err
	case '{', '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.i++
		s.ws()
		if s.peek() == closer {
			s.i++
			return nil
		}
		for {
			if c == '{' {
				if s.peek() != '"' {
					return s.unexpected("a key")
				}
				if _, err := s.str(); err != nil {
					return err
				}
				s.ws()
				if s.peek() != ':' {
					return s.unexpected("':'")
				}
				s.i++
				s.ws()
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
				s.ws()
			case closer:
				s.i++
				return nil
			default:
				return s.unexpected(fmt.Sprintf("',' or '%c'", closer))
			}
		}
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		_, _, err := s.number()
		return err
	}
	return s.unexpected("a value")
}

// kind names the JSON type of the value at s.i, for errors.
func (s *scanner) kind() string {
	switch s.peek() {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "a number"
	case 0:
		return "the end of the payload"
	}
	return strconv.QuoteRune(rune(s.peek()))
}

// objectStart reads '{' and reports whether the object is empty ('}' read
// too).
func (s *scanner) objectStart() (empty bool, err error) {
	s.i++ // '{'
	s.ws()
	if s.peek() == '}' {
		s.i++
		return true, nil
	}
	return false, nil
}

// key reads `"key":` and the white space after it.
func (s *scanner) key() ([]byte, error) {
	if s.peek() != '"' {
		return nil, s.unexpected("a key")
	}
	k, err := s.str()
	if err != nil {
		return nil, err
	}
	s.ws()
	if s.peek() != ':' {
		return nil, s.unexpected("':'")
	}
	s.i++
	s.ws()
	return k, nil
}

// next reads ',' or the closer after a member and reports whether the
// object or array goes on.
func (s *scanner) next(closer byte) (more bool, err error) {
	s.ws()
	switch s.peek() {
	case ',':
		s.i++
		s.ws()
		return true, nil
	case closer:
		s.i++
		return false, nil
	}
	return false, s.unexpected(fmt.Sprintf("',' or '%c'", closer))
}

// validJSON reports whether b is one JSON value and nothing else: on an
// error path it tells a payload that is not JSON from a JSON message of the
// wrong shape.
func validJSON(b []byte) bool {
	s := scanner{b: b}
	s.ws()
	if s.skip(0) != nil {
		return false
	}
	s.ws()
	return s.i == len(b)
}

// unknownKey describes a key that is not one of known, pointing out a
// case variant: keys are case-sensitive.
func unknownKey(k []byte, known ...string) string {
	for _, w := range known {
		if strings.EqualFold(string(k), w) {
			return fmt.Sprintf("unknown key %q (keys are case-sensitive: %q)", k, w)
		}
	}
	return fmt.Sprintf("unknown key %q (known keys: %s)", k, strings.Join(known, ", "))
}

var envelopeKeys = []string{"v", "site", "gateway", "seq", "ts", "readings"}

var readingKeys = []string{"point", "value", "quality", "ts"}

// shapeErr is a JSON payload whose envelope is not a telemetry message.
type shapeErr struct{ msg string }

func (e *shapeErr) Error() string { return e.msg }

func shape(format string, args ...any) error { return &shapeErr{fmt.Sprintf(format, args...)} }

// decodeTelemetry reads a telemetry message; errors are *syntaxErr or
// *shapeErr, or a *MessageError (too many readings).
func decodeTelemetry(b []byte, t *Telemetry) error {
	s := scanner{b: b}
	s.ws()
	if s.peek() != '{' {
		if s.i == len(b) {
			return s.syntax("payload is empty")
		}
		kind := s.kind()
		if err := s.skip(0); err != nil {
			return err
		}
		return shape("the message is %s, not an object", kind)
	}
	empty, _ := s.objectStart()
	const (
		fV = 1 << iota
		fSite
		fGateway
		fSeq
		fTS
		fReadings
	)
	var seen uint
	for !empty {
		keyAt := s.i
		k, err := s.key()
		if err != nil {
			return err
		}
		var f uint
		switch string(k) {
		case "v":
			f = fV
		case "site":
			f = fSite
		case "gateway":
			f = fGateway
		case "seq":
			f = fSeq
		case "ts":
			f = fTS
		case "readings":
			f = fReadings
		default:
			return shape("%s at byte %d", unknownKey(k, envelopeKeys...), keyAt)
		}
		if seen&f != 0 {
			return shape("key %q given twice (at byte %d)", k, keyAt)
		}
		seen |= f
		switch f {
		case fV:
			n, err := s.intField("v")
			if err != nil {
				return err
			}
			t.V = int(n)
		case fSite:
			t.Site, err = s.stringField("site")
		case fGateway:
			t.Gateway, err = s.stringField("gateway")
		case fSeq:
			t.Seq, err = s.uintField("seq")
		case fTS:
			err = s.timeField("ts", &t.TS)
		case fReadings:
			err = s.readings(t)
		}
		if err != nil {
			return err
		}
		more, err := s.next('}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	s.ws()
	if s.i != len(b) {
		return s.syntax("data after the message's object (one message is one JSON object)")
	}
	return nil
}

func (s *scanner) stringField(name string) (string, error) {
	switch s.peek() {
	case '"':
		v, err := s.str()
		return string(v), err
	case 'n':
		return "", s.literal("null")
	}
	return "", shape("%s must be a string, not %s", name, s.kind())
}

// uintField reads a non-negative integer (null is 0).
func (s *scanner) uintField(name string) (uint64, error) {
	if s.peek() == 'n' {
		return 0, s.literal("null")
	}
	if c := s.peek(); c != '-' && (c < '0' || c > '9') {
		return 0, shape("%s must be an integer, not %s", name, s.kind())
	}
	raw, integer, err := s.number()
	if err != nil {
		return 0, err
	}
	if !integer || raw[0] == '-' {
		return 0, shape("%s must be a whole number from 0 up, not %s", name, raw)
	}
	var n uint64
	for _, c := range raw {
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, shape("%s %s is too large", name, raw)
		}
		n = n*10 + d
	}
	return n, nil
}

// intField reads a small integer such as the version.
func (s *scanner) intField(name string) (int64, error) {
	neg := s.peek() == '-'
	if neg {
		// uintField reads the magnitude after the sign.
		s.i++
		if c := s.peek(); c < '0' || c > '9' {
			return 0, s.unexpected("a digit")
		}
	}
	n, err := s.uintField(name)
	if err != nil {
		return 0, err
	}
	if n > 1<<31 {
		return 0, shape("%s is out of range", name)
	}
	if neg {
		return -int64(n), nil
	}
	return int64(n), nil
}

func (s *scanner) timeField(name string, t *Time) error {
	switch s.peek() {
	case '"':
		v, err := s.str()
		if err != nil {
			return err
		}
		if t.Time, err = parseTime(v); err != nil {
			return shape("%s: %v", name, err)
		}
		return nil
	case 'n':
		if err := s.literal("null"); err != nil {
			return err
		}
		return shape("%s is null", name)
	}
	return shape("%s must be an RFC 3339 string, not %s", name, s.kind())
}

func parseTime(v []byte) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, string(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339", v)
	}
	return t, nil
}

func (s *scanner) readings(t *Telemetry) error {
	switch s.peek() {
	case '[':
	case 'n':
		return s.literal("null")
	default:
		return shape("readings must be an array, not %s", s.kind())
	}
	s.i++
	s.ws()
	if s.peek() == ']' {
		s.i++
		return nil
	}
	// Each reading has a "point": counting them sizes the slice once.
	n := min(bytes.Count(s.b[s.i:], []byte(`"point"`)), MaxReadings)
	t.Readings = make([]Reading, 0, max(n, 1))
	// The values live in one block, not one allocation each.
	values := make([]float64, 0, max(n, 1))
	for {
		if len(t.Readings) == MaxReadings {
			return &MessageError{ReasonTooLarge, fmt.Errorf("more than %d readings", MaxReadings)}
		}
		if s.peek() != '{' {
			kind := s.kind()
			if err := s.skip(1); err != nil {
				return err
			}
			return shape("readings[%d] is %s, not an object", len(t.Readings), kind)
		}
		t.Readings = append(t.Readings, Reading{})
		if err := s.reading(&t.Readings[len(t.Readings)-1], &values); err != nil {
			return err
		}
		more, err := s.next(']')
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// readingProblem is what is wrong with one reading as received.
type readingProblem struct {
	reason, msg string
}

// reading reads one reading object at s.i into r. It returns an error only
// when the payload is not JSON; anything else wrong with the reading is
// kept on it for Check.
func (s *scanner) reading(r *Reading, values *[]float64) error {
	const (
		fPoint = 1 << iota
		fValue
		fQuality
		fTS
	)
	var seen uint
	var prob, valueProb *readingProblem
	note := func(p **readingProblem, reason, format string, args ...any) {
		if *p == nil {
			*p = &readingProblem{reason, fmt.Sprintf(format, args...)}
		}
	}
	hasValue := false
	empty, _ := s.objectStart()
	for !empty {
		keyAt := s.i
		k, err := s.key()
		if err != nil {
			return err
		}
		var f uint
		switch string(k) {
		case "point":
			f = fPoint
		case "value":
			f = fValue
		case "quality":
			f = fQuality
		case "ts":
			f = fTS
		}
		switch {
		case f == 0:
			note(&prob, ReasonBadReading, "%s at byte %d", unknownKey(k, readingKeys...), keyAt)
			err = s.skip(1)
		case seen&f != 0:
			note(&prob, ReasonBadReading, "key %q given twice (at byte %d)", k, keyAt)
			err = s.skip(1)
		case f == fPoint:
			if s.peek() != '"' {
				note(&prob, ReasonBadReading, "point must be a string, not %s", s.kind())
				err = s.skip(1)
				break
			}
			var v []byte
			if v, err = s.str(); err == nil {
				r.Point = string(v)
			}
		case f == fQuality:
			if s.peek() != '"' {
				note(&prob, ReasonBadReading, "quality must be a string, not %s", s.kind())
				err = s.skip(1)
				break
			}
			var v []byte
			if v, err = s.str(); err == nil {
				r.Quality = quality(v)
			}
		case f == fValue:
			switch c := s.peek(); {
			case c == '-' || '0' <= c && c <= '9':
				var raw []byte
				if raw, _, err = s.number(); err != nil {
					break
				}
				hasValue = true
				v, perr := strconv.ParseFloat(string(raw), 64)
				if perr != nil { // out of float64's range
					note(&valueProb, ReasonNotANumber, "value %.40s is not a finite number", raw)
					break
				}
				if len(*values) < cap(*values) {
					*values = append(*values, v)
					r.Value = &(*values)[len(*values)-1]
				} else {
					r.Value = F(v)
				}
			case c == 'n':
				err = s.literal("null")
			case c == '"':
				hasValue = true
				start := s.i
				if _, err = s.str(); err == nil {
					note(&valueProb, ReasonNotANumber, "value %.40s is not a finite number", s.b[start:s.i])
				}
			default:
				hasValue = true
				note(&valueProb, ReasonBadReading, "value must be a number, not %s", s.kind())
				err = s.skip(1)
			}
		case f == fTS:
			switch s.peek() {
			case 'n':
				err = s.literal("null")
			case '"':
				var v []byte
				if v, err = s.str(); err != nil {
					break
				}
				t, perr := parseTime(v)
				if perr != nil {
					note(&prob, ReasonBadReading, "ts: %v", perr)
					break
				}
				r.TS = &Time{t}
			default:
				note(&prob, ReasonBadReading, "ts must be an RFC 3339 string, not %s", s.kind())
				err = s.skip(1)
			}
		}
		if err != nil {
			return err
		}
		seen |= f
		more, err := s.next('}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	if q := r.Quality; hasValue && (q == Bad || q == CommFail) {
		// A faulty or unread sensor has no value to trust, whatever the
		// gateway put there: the reading is kept as what it is.
		r.Value, r.stripped, valueProb = nil, true, nil
	}
	if prob == nil {
		prob = valueProb
	}
	if prob != nil {
		point := "(no point)"
		if r.Point != "" {
			point = strconv.Quote(r.Point)
		}
		r.invalid = &MessageError{prob.reason, fmt.Errorf("point %s: %s", point, prob.msg)}
	}
	return nil
}

// quality returns one of the constant qualities without allocating.
func quality(v []byte) Quality {
	switch string(v) {
	case "good":
		return Good
	case "bad":
		return Bad
	case "comm_fail":
		return CommFail
	case "over_range":
		return OverRange
	}
	return Quality(v)
}

// UnmarshalJSON decodes one reading with the rules of DecodeTelemetry. It
// fails only when b is not a JSON object; any other problem is kept for
// Check to report.
func (r *Reading) UnmarshalJSON(b []byte) error {
	s := scanner{b: b}
	s.ws()
	if s.peek() != '{' {
		return errors.New("reading is not an object")
	}
	*r = Reading{}
	if err := s.reading(r, new([]float64)); err != nil {
		return err
	}
	s.ws()
	if s.i != len(b) {
		return s.syntax("data after the reading")
	}
	return nil
}
