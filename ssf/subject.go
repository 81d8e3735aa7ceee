package ssf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Subject identifiers, RFC 9493 (Subject Identifiers for Security Event Tokens) and SSF 1.0
// §3 (complex subjects: an object whose members, such as "user", "session" and "application",
// are each a subject identifier).

// maxSubjectBytes bounds the JSON of one subject a receiver adds.
const maxSubjectBytes = 4 << 10

// maxSubjectKeys bounds the simple identifiers in one subject (the members of a complex
// subject, the identifiers of aliases): each is a stored lookup key.
const maxSubjectKeys = 10

// simpleFormats are the RFC 9493 §3.2 formats and the members each requires.
var simpleFormats = map[string][]string{
	"account":      {"uri"},
	"email":        {"email"},
	"iss_sub":      {"iss", "sub"},
	"opaque":       {"id"},
	"phone_number": {"phone_number"},
	"did":          {"url"},
	"uri":          {"uri"},
}

// complexMembers are the members of a complex subject (SSF 1.0 §3.2).
var complexMembers = map[string]bool{
	"user": true, "device": true, "session": true, "application": true, "tenant": true, "org_unit": true, "group": true,
}

// subjectKeys validates a subject identifier (simple, aliases or complex) and returns its
// canonical JSON and the lookup keys of every simple identifier in it.
func subjectKeys(raw json.RawMessage) ([]byte, []string, error) {
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil, errors.New("subject is required")
	}
	if len(raw) > maxSubjectBytes {
		return nil, nil, fmt.Errorf("subject is larger than %d bytes", maxSubjectBytes)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, nil, errors.New("subject must be a JSON object (RFC 9493)")
	}
	var keys []string
	if _, ok := obj["format"]; ok {
		k, err := simpleKeys(obj, 0)
		if err != nil {
			return nil, nil, err
		}
		keys = k
	} else {
		if len(obj) == 0 {
			return nil, nil, errors.New("subject: a complex subject needs at least one member (SSF 1.0 §3.2)")
		}
		for name, member := range obj {
			if !complexMembers[name] {
				return nil, nil, fmt.Errorf("subject: unknown member %q of a complex subject (SSF 1.0 §3.2)", name)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(member, &m); err != nil {
				return nil, nil, fmt.Errorf("subject: member %q must be a subject identifier object", name)
			}
			k, err := simpleKeys(m, 0)
			if err != nil {
				return nil, nil, fmt.Errorf("subject: member %q: %w", name, err)
			}
			keys = append(keys, k...)
		}
	}
	canon, err := json.Marshal(obj) // map keys sorted: canonical enough for identity
	if err != nil {
		return nil, nil, fmt.Errorf("subject: %w", err)
	}
	canon, err = canonical(canon)
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(keys)
	keys = dedupe(keys)
	if len(keys) > maxSubjectKeys {
		return nil, nil, fmt.Errorf("subject has %d identifiers: at most %d (aliases or complex subject members)", len(keys), maxSubjectKeys)
	}
	return canon, keys, nil
}

// canonical re-encodes JSON with object keys sorted at every depth.
func canonical(b []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	return json.Marshal(v) // encoding/json sorts map keys
}

// simpleKeys returns the lookup keys of one simple subject identifier (aliases: of each).
func simpleKeys(obj map[string]json.RawMessage, depth int) ([]string, error) {
	var format string
	if err := json.Unmarshal(obj["format"], &format); err != nil || format == "" {
		return nil, errors.New("format must be a non-empty string (RFC 9493 §3)")
	}
	if format == "aliases" {
		if depth > 0 {
			return nil, errors.New("aliases cannot be nested (RFC 9493 §3.2.8)")
		}
		var ids []map[string]json.RawMessage
		if err := json.Unmarshal(obj["identifiers"], &ids); err != nil || len(ids) == 0 {
			return nil, errors.New("aliases needs a non-empty identifiers array (RFC 9493 §3.2.8)")
		}
		var keys []string
		for _, id := range ids {
			k, err := simpleKeys(id, depth+1)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k...)
		}
		return keys, nil
	}
	members, ok := simpleFormats[format]
	if !ok {
		return nil, fmt.Errorf("unsupported subject format %q (RFC 9493 §3.2: account, email, iss_sub, opaque, phone_number, did, uri, aliases)", format)
	}
	vals := make([]string, len(members))
	for i, m := range members {
		if err := json.Unmarshal(obj[m], &vals[i]); err != nil || vals[i] == "" {
			return nil, fmt.Errorf("format %q needs a non-empty string %q (RFC 9493 §3.2)", format, m)
		}
	}
	return []string{key(format, vals...)}, nil
}

// key is the lookup key of a simple identifier: the hex SHA-256 of its format and values
// (so any value, whatever bytes it holds, makes a key every database stores). Email addresses
// compare case-insensitively.
func key(format string, vals ...string) string {
	if format == "email" {
		vals = []string{strings.ToLower(vals[0])}
	}
	b, _ := json.Marshal(append([]string{format}, vals...)) // strings always marshal
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// opaqueIDs returns the ids of the opaque identifiers of a simple subject identifier, or of the
// identifiers of aliases (RFC 9493 §3.2.4, §3.2.8).
func opaqueIDs(obj map[string]json.RawMessage) []string {
	var format string
	json.Unmarshal(obj["format"], &format)
	switch format {
	case "opaque":
		var id string
		json.Unmarshal(obj["id"], &id)
		return []string{id}
	case "aliases":
		var ids []map[string]json.RawMessage
		json.Unmarshal(obj["identifiers"], &ids)
		var out []string
		for _, id := range ids {
			var f string
			if json.Unmarshal(id["format"], &f) == nil && f == "opaque" {
				var v string
				json.Unmarshal(id["id"], &v)
				out = append(out, v)
			}
		}
		return out
	}
	return nil
}

// subjectID identifies a subject within a stream: the hex SHA-256 of its canonical JSON.
func subjectID(canon []byte) string {
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])
}

// issSub is an iss_sub subject identifier (RFC 9493 §3.2.5).
func issSub(iss, sub string) map[string]string {
	return map[string]string{"format": "iss_sub", "iss": iss, "sub": sub}
}

// opaque is an opaque subject identifier (RFC 9493 §3.2.4).
func opaque(id string) map[string]string {
	return map[string]string{"format": "opaque", "id": id}
}

// subjectMatches reports whether a subject added to a stream (canonical JSON) covers an event
// whose subject has the given member keys. A complex subject matches only if every one of its
// members matches the event's member of the same name (SSF 1.0 §3.2: {"user", "session"} is
// that session of that user, not every event of the user); a simple subject, or aliases,
// matches the event's principal: its "user", or, for an event about a client alone (a secret
// changed), its "application". So a client's id as a simple subject never matches an event
// about a person's grant to it. A malformed subject matches nothing.
func subjectMatches(canon []byte, members map[string]string) bool {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(canon, &obj); err != nil || len(obj) == 0 {
		return false
	}
	if _, ok := obj["format"]; ok {
		principal := members["user"]
		if principal == "" {
			principal = members["application"]
		}
		keys, err := simpleKeys(obj, 0)
		return err == nil && principal != "" && slices.Contains(keys, principal)
	}
	for name, raw := range obj {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return false
		}
		keys, err := simpleKeys(m, 0)
		if err != nil || members[name] == "" || !slices.Contains(keys, members[name]) {
			return false
		}
	}
	return true
}

// checkSubjectRelation refuses a subject that would tell receiver about people it did not name,
// or about another client: a complex subject with an application other than the receiver itself
// must name a user too (an application alone would cover every person's grant to another
// client, naming each); a simple subject, or aliases, may hold no opaque identifier other than
// the receiver's own client id (an opaque simple identifier matches only an event about a client
// alone, by its id: subjectMatches; re-audit 3B #5: naming another client that way told the
// receiver of that client's credential changes).
func checkSubjectRelation(raw json.RawMessage, receiver string) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil // subjectKeys has refused it
	}
	if _, simple := obj["format"]; simple {
		for _, id := range opaqueIDs(obj) {
			if id != receiver {
				return errors.New(`subject: an opaque identifier as a subject (or in aliases) names a client, and a receiver may name only itself that way; name another client as an "application" together with a "user" (SSF 1.0 §3.2)`)
			}
		}
		return nil
	}
	app, ok := obj["application"]
	if _, user := obj["user"]; !ok || user {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(app, &m) != nil {
		return nil
	}
	keys, err := simpleKeys(m, 0)
	if err != nil {
		return nil
	}
	self := key("opaque", receiver)
	for _, k := range keys {
		if k != self {
			return errors.New(`subject: an "application" other than the receiver itself must come with a "user" (SSF 1.0 §3.2): a receiver learns only of the people it names`)
		}
	}
	return nil
}
