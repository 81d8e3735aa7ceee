package admin_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/token"
)

// TestKeyRoutesPerAlgorithm: from the first start the key list shows a key of each algorithm
// (ES256 for access tokens, EdDSA and RS256 for ID tokens and SETs) with use sig; the only RS256
// key cannot be retired; a rotation makes a key of each algorithm; then the old RS256 key can be
// retired and the access tokens' key is untouched.
func TestKeyRoutesPerAlgorithm(t *testing.T) {
	a := newAPI(t)
	if err := a.keys.Ensure(context.Background(), token.AlgRS256); err != nil {
		t.Fatal(err)
	}
	bySig := func() map[string]map[string]any { // alg+state -> key
		out := map[string]map[string]any{}
		for _, k := range a.call("GET", "/admin/v1/keys", "").list(t) {
			if k["use"] == "sig" {
				out[k["alg"].(string)+" "+k["state"].(string)] = k
			}
		}
		return out
	}
	keys := bySig()
	es, rs := keys["ES256 active"], keys["RS256 active"]
	if len(keys) != 3 || es == nil || rs == nil || keys["EdDSA active"] == nil {
		t.Fatalf("signing keys %v; want one active ES256, EdDSA and RS256", keys)
	}
	wantError(t, a.call("POST", "/admin/v1/keys/"+rs["kid"].(string)+"/retire", ""), 409, "key_in_use")

	r := a.call("POST", "/admin/v1/keys/rotate", "")
	var rot admin.RotateKeysResponse
	if err := json.Unmarshal(r.body, &rot); err != nil || r.status != 200 {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	if len(rot.SigningKeys) != 3 || rot.SigningKeys[0] != (admin.RotatedKey{KID: rot.SigningKeyID, Alg: "ES256"}) ||
		rot.SigningKeys[1].Alg != "EdDSA" || rot.SigningKeys[2].Alg != "RS256" {
		t.Fatalf("rotate: %s; want signing_keys ES256, EdDSA, RS256", r.body)
	}
	keys = bySig()
	if keys["RS256 next"]["kid"] != rot.SigningKeys[2].KID || keys["RS256 active"]["kid"] != rs["kid"] || keys["ES256 next"] == nil {
		t.Fatalf("states after rotate: %v", keys)
	}
	r = a.call("POST", "/admin/v1/keys/"+rs["kid"].(string)+"/retire", "")
	var ret admin.RetireKeyResponse
	if err := json.Unmarshal(r.body, &ret); err != nil || r.status != 200 || ret.Alg != "RS256" || ret.State != "retired" ||
		ret.ActivatedKID != rot.SigningKeys[2].KID {
		t.Fatalf("retire: %d %s", r.status, r.body)
	}
	keys = bySig()
	if keys["ES256 active"]["kid"] != es["kid"] || keys["RS256 active"]["kid"] != rot.SigningKeys[2].KID {
		t.Fatalf("states after retiring the RS256 key: %v", keys)
	}
	if kid, _ := a.keys.Signer().Active(); kid != es["kid"] {
		t.Fatalf("access tokens signed by %s; want %s", kid, es["kid"])
	}
}
