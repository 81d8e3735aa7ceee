package ssf

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/rescind/rescind"
)

// Event types, exactly as CAEP 1.0 §3, RISC 1.0 §2 and SSF 1.0 §8.1.4 define them.
const (
	// EventSessionRevoked is CAEP 1.0 §3.1: a session of the subject was revoked.
	EventSessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	// EventCredentialChange is CAEP 1.0 §3.3: a credential of the subject changed.
	EventCredentialChange = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	// EventAccountDisabled is RISC 1.0 §2.3: the account was disabled.
	EventAccountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	// EventAccountPurged is RISC 1.0 §2.2: the account was permanently deleted.
	EventAccountPurged = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	// EventVerification is SSF 1.0 §8.1.4.1: the verification event, sent on request.
	EventVerification = "https://schemas.openid.net/secevent/ssf/event-type/verification"
)

// Supported lists the event types a stream can carry (events_supported). Verification events
// are sent on request to every stream, whatever it asked for.
var Supported = []string{EventSessionRevoked, EventCredentialChange, EventAccountDisabled, EventAccountPurged}

// TypeSET is the typ header of a Security Event Token (RFC 8417 §2.3).
const TypeSET = "secevent+jwt"

// event is one event a Signal makes: its type, its subject (sub_id), the keys that find the
// streams that added that subject, and the members of its event object.
type event struct {
	typ    string
	subID  any
	keys   []string
	fields map[string]any
	// members are the lookup keys of the event's subject by member name (SSF 1.0 §3.2): "user"
	// for a person, "session", "application". A subject added to a stream matches the event as
	// subjectMatches says.
	members map[string]string
}

// eventsOf turns a Signal into its events (CAEP 1.0, RISC 1.0).
func eventsOf(iss string, sg rescind.Signal) []event {
	user := issSub(iss, sg.UserID)
	userKey := key("iss_sub", iss, sg.UserID)
	base := func(what string) map[string]any {
		return map[string]any{
			"event_timestamp":   sg.At.Unix(),
			"initiating_entity": initiatingEntity(sg.Actor),
			"reason_admin":      map[string]string{"en": reasonAdmin(what, sg)},
		}
	}
	evs := eventsOfKind(iss, sg, user, userKey, base)
	for i := range evs {
		evs[i].members = map[string]string{}
		switch sg.Kind {
		case rescind.SignalSessionEnded:
			evs[i].members["user"], evs[i].members["session"] = userKey, key("opaque", sg.SessionID)
		case rescind.SignalGrantRevoked:
			evs[i].members["user"], evs[i].members["application"] = userKey, key("opaque", sg.ClientID)
		case rescind.SignalClientSecretChanged:
			evs[i].members["application"] = key("opaque", sg.ClientID)
		default:
			evs[i].members["user"] = userKey
		}
	}
	return evs
}

func eventsOfKind(iss string, sg rescind.Signal, user map[string]string, userKey string, base func(string) map[string]any) []event {
	switch sg.Kind {
	case rescind.SignalSessionEnded:
		return []event{{typ: EventSessionRevoked,
			subID: map[string]any{"user": user, "session": opaque(sg.SessionID)},
			keys:  []string{userKey, key("opaque", sg.SessionID)}, fields: base("session ended")}}
	case rescind.SignalGrantRevoked:
		return []event{{typ: EventSessionRevoked,
			subID: map[string]any{"user": user, "application": opaque(sg.ClientID)},
			keys:  []string{userKey, key("opaque", sg.ClientID)}, fields: base("grant revoked")}}
	case rescind.SignalPasswordSet:
		f := base("password set")
		f["credential_type"], f["change_type"] = "password", "update"
		return []event{{typ: EventCredentialChange, subID: user, keys: []string{userKey}, fields: f}}
	case rescind.SignalUserDeleted:
		return []event{
			{typ: EventAccountDisabled, subID: user, keys: []string{userKey}, fields: base("user deleted")},
			{typ: EventAccountPurged, subID: user, keys: []string{userKey}, fields: base("user deleted")},
		}
	case rescind.SignalClientSecretChanged:
		f := base("client secret " + changeWord(sg.Change))
		change := sg.Change
		if change == "" {
			change = "update"
		}
		// CAEP 1.0 §3.3 has no type for a client secret: it is a shared secret, a password.
		f["credential_type"], f["change_type"], f["friendly_name"] = "password", change, "client secret"
		return []event{{typ: EventCredentialChange, subID: map[string]any{"application": opaque(sg.ClientID)},
			keys: []string{key("opaque", sg.ClientID)}, fields: f}}
	}
	return nil
}

func changeWord(c string) string {
	switch c {
	case "create":
		return "created"
	case "delete":
		return "removed"
	}
	return "rotated"
}

// reasonAdmin is the event's reason_admin text (never empty): what happened, why, by whom.
func reasonAdmin(what string, sg rescind.Signal) string {
	s := what
	if sg.Reason != "" && sg.Reason != what {
		s += ": " + sg.Reason
	}
	if sg.Actor != "" {
		s += " (by " + sg.Actor + ")"
	}
	return s
}

// initiatingEntity is CAEP 1.0 §2's initiating_entity of an actor as the audit log names it.
func initiatingEntity(actor string) string {
	switch {
	case strings.HasPrefix(actor, "admin"):
		return "admin"
	case strings.HasPrefix(actor, "user"):
		return "user"
	case strings.HasPrefix(actor, "client"):
		return "policy"
	}
	return "system"
}

// setClaims are the claims of a SET but iss and aud (RFC 8417 §2.2, SSF 1.0 §4): no sub, no
// exp.
type setClaims struct {
	IssuedAt int64                     `json:"iat"`
	JTI      string                    `json:"jti"`
	Txn      string                    `json:"txn,omitempty"`
	SubID    any                       `json:"sub_id"`
	Events   map[string]map[string]any `json:"events"`
}

// claimsJSON encodes an event's stored claims.
func claimsJSON(jti, txn string, at time.Time, ev event) ([]byte, error) {
	b, err := json.Marshal(setClaims{IssuedAt: at.Unix(), JTI: jti, Txn: txn, SubID: ev.subID,
		Events: map[string]map[string]any{ev.typ: ev.fields}})
	if err != nil {
		return nil, fmt.Errorf("ssf: encoding an event: %w", err)
	}
	return b, nil
}

// fullClaims adds iss and aud to stored claims, for signing.
func fullClaims(stored []byte, iss string, aud string) (map[string]any, error) {
	var c map[string]any
	if err := json.Unmarshal(stored, &c); err != nil {
		return nil, fmt.Errorf("ssf: a stored event: %w", err)
	}
	c["iss"], c["aud"] = iss, aud
	return c, nil
}
