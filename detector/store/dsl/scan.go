package dsl

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// A search response is walked, not parsed: a raw read passes each source
// on as the engine sent it, so its sources need only be found, and
// building a tree of every source (and writing each back out) was most of
// the client's cost of reading a window. The walk checks the structure it
// passes over (strings, nesting); what it hands on is exactly the bytes
// between a value's first and last character.

var errScan = errors.New("malformed JSON")

// rawHit is one hit of a search response as sent.
type rawHit struct {
	id, index []byte // JSON strings, quotes included
	source    []byte // the _source value
	sort      []byte // the sort array
}

// rawHits is what decodeRawHits needs of a search response.
type rawHits struct {
	timedOut bool
	shards   []byte // the _shards object, nil if absent
	hits     []rawHit
}

// scanHits walks a search response.
func scanHits(b []byte) (rawHits, error) {
	var out rawHits
	end, err := eachKey(b, skipSpace(b, 0), func(key []byte, at int) (int, error) {
		switch string(keyName(key)) {
		case "timed_out":
			end, err := skipValue(b, at)
			out.timedOut = err == nil && string(b[at:end]) == "true"
			return end, err
		case "_shards":
			end, err := skipValue(b, at)
			if err == nil {
				out.shards = b[at:end]
			}
			return end, err
		case "hits":
			return eachKey(b, at, func(key []byte, at int) (int, error) {
				if string(keyName(key)) != "hits" {
					return skipValue(b, at)
				}
				out.hits = out.hits[:0] // the last "hits" wins, as in encoding/json
				return eachElem(b, at, func(at int) (int, error) {
					h, end, err := scanHit(b, at)
					out.hits = append(out.hits, h)
					return end, err
				})
			})
		}
		return skipValue(b, at)
	})
	if err == nil && skipSpace(b, end) != len(b) {
		err = errScan
	}
	return out, err
}

func scanHit(b []byte, at int) (rawHit, int, error) {
	var h rawHit
	end, err := eachKey(b, at, func(key []byte, at int) (int, error) {
		end, err := skipValue(b, at)
		if err != nil {
			return 0, err
		}
		switch string(keyName(key)) {
		case "_id":
			h.id = b[at:end]
		case "_index":
			h.index = b[at:end]
		case "_source":
			h.source = b[at:end]
		case "sort":
			h.sort = b[at:end]
		}
		return end, err
	})
	return h, end, err
}

// keyName is a key as encoding/json reads it (escapes undone), without a
// copy for a key written plainly (the switches on it do not allocate).
func keyName(key []byte) []byte {
	if bytes.IndexByte(key, '\\') < 0 {
		return key[1 : len(key)-1]
	}
	s, _ := unquote(key)
	return []byte(s)
}

// eachKey calls fn with each key (quotes included) of the object at i and
// the offset of its value; fn returns where the value ends. eachKey
// returns where the object ends.
func eachKey(b []byte, i int, fn func(key []byte, at int) (int, error)) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return 0, errScan
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		end, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		key := b[i:end]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, errScan
		}
		if i, err = fn(key, skipSpace(b, i+1)); err != nil {
			return 0, err
		}
		if i, err = nextOrClose(b, i, '}'); err != nil || i < 0 {
			return -i, err
		}
	}
}

// eachElem calls fn with the offset of each element of the array at i.
func eachElem(b []byte, i int, fn func(at int) (int, error)) (int, error) {
	if i >= len(b) || b[i] != '[' {
		return 0, errScan
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = fn(i); err != nil {
			return 0, err
		}
		if i, err = nextOrClose(b, i, ']'); err != nil || i < 0 {
			return -i, err
		}
	}
}

// nextOrClose reads the comma or the closing byte after a member: the
// offset of the next member, or minus the offset after the close.
func nextOrClose(b []byte, i int, closing byte) (int, error) {
	i = skipSpace(b, i)
	switch {
	case i < len(b) && b[i] == ',':
		return skipSpace(b, i+1), nil
	case i < len(b) && b[i] == closing:
		return -(i + 1), nil
	}
	return 0, errScan
}

// skipValue returns where the value at i ends.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errScan
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{':
		return skipObject(b, i)
	case '[':
		return skipArray(b, i)
	}
	// A literal, or a number: its characters up to the next delimiter
	// (strconv checks a sort value's grammar; the reader of a source, its
	// numbers).
	j := i
	for j < len(b) && scalarByte(b[j]) {
		j++
	}
	switch tok := string(b[i:j]); {
	case tok == "true" || tok == "false" || tok == "null":
	case tok != "" && (tok[0] == '-' || tok[0] >= '0' && tok[0] <= '9'):
	default:
		return 0, errScan
	}
	return j, nil
}

func scalarByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'E'
}

// skipObject and skipArray skip a container's members (a source's
// objects are skipped, never read).
func skipObject(b []byte, i int) (int, error) {
	return eachKey(b, i, func(_ []byte, at int) (int, error) { return skipValue(b, at) })
}

func skipArray(b []byte, i int) (int, error) {
	return eachElem(b, i, func(at int) (int, error) { return skipValue(b, at) })
}

// skipString returns where the string at i ends, after its quote. Control
// characters are refused, as JSON does.
func skipString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errScan
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, nil
		case c == '\\':
			j++ // the escaped byte (a \u's digits are plain bytes)
		case c < 0x20:
			return 0, errScan
		}
	}
	return 0, errScan
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// unquote returns the JSON string s (quotes included) unescaped.
func unquote(s []byte) (string, error) {
	if len(s) < 2 {
		return "", errScan
	}
	if bytes.IndexByte(s, '\\') < 0 {
		return string(s[1 : len(s)-1]), nil
	}
	var out string
	err := json.Unmarshal(s, &out)
	return out, err
}

// firstSortValue returns the first element of a sort array: a number, or
// a string unescaped.
func firstSortValue(sort []byte) (any, bool) {
	if len(sort) == 0 || sort[0] != '[' {
		return nil, false
	}
	at := skipSpace(sort, 1)
	end, err := skipValue(sort, at)
	if err != nil {
		return nil, false
	}
	first := sort[at:end]
	if first[0] == '"' {
		s, err := unquote(first)
		return s, err == nil
	}
	f, err := strconv.ParseFloat(string(first), 64)
	return f, err == nil
}
