package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/testenv"
)

// systemPython is Debian's interpreter, which has python3-requests and python3-authlib.
const systemPython = "/usr/bin/python3"

func requirePython(t *testing.T, modules ...string) {
	t.Helper()
	args := []string{"-c", "import " + strings.Join(modules, ", ")}
	if err := exec.Command(systemPython, args...).Run(); err != nil {
		testenv.Unavailable(t, "python", systemPython+" with "+strings.Join(modules, ", ")+" is not available")
	}
}

// TestAuthlibInterop drives the server with Authlib, which sends Basic credentials unencoded
// and as ISO-8859-1, and with client_secret_post, for a secret full of special characters.
func TestAuthlibInterop(t *testing.T) {
	requirePython(t, "authlib", "requests")
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	const sec = "p:a%s+s w\u00e9&="
	var c admin.ClientInfo
	json.Unmarshal([]byte(cliInput(t, sec, "client", "create", "--data-dir", data, "--name", "py", "--scope", "read write", "--secret-stdin")), &c)
	script := `
import sys
from authlib.integrations.requests_client import OAuth2Session
url, cid, sec = sys.argv[1:4]
for method in ["client_secret_basic", "client_secret_post"]:
    s = OAuth2Session(cid, sec, token_endpoint_auth_method=method, scope="read")
    tok = s.fetch_token(url + "/oauth2/token", grant_type="client_credentials")
    assert tok["token_type"] == "Bearer" and tok["scope"] == "read", tok
    assert s.introspect_token(url + "/oauth2/introspect", token=tok["access_token"]).json()["active"] is True
    r = s.revoke_token(url + "/oauth2/revoke", token=tok["access_token"], token_type_hint="access_token")
    assert r.status_code == 200 and r.text == "", (r.status_code, r.text)
    assert s.introspect_token(url + "/oauth2/introspect", token=tok["access_token"]).json() == {"active": False}
    print(method, "ok")
`
	out, err := exec.Command(systemPython, "-c", script, srv.url, c.ClientID, sec).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "client_secret_basic ok") || !strings.Contains(string(out), "client_secret_post ok") {
		t.Fatalf("authlib: %v\n%s", err, out)
	}
}

// TestAuthlibOIDCMetadata: Authlib's OpenIDProviderMetadata.validate() checks the discovery
// document of a server whose issuer is https (behind a TLS-terminating proxy). Authlib requires
// RS256 among id_token_signing_alg_values_supported (OpenID Connect Discovery 1.0 §3): until the
// server has RS256 keys, every other validation is run and the test reports that one as the
// only gap (skipped, so that CI shows it).
func TestAuthlibOIDCMetadata(t *testing.T) {
	requirePython(t, "authlib")
	srv := startServer(t, filepath.Join(shortTempDir(t), "d"), nil, "--issuer", "https://op.example")
	script := `
import sys, json, urllib.request
from authlib.oidc.discovery import OpenIDProviderMetadata
md = OpenIDProviderMetadata(json.load(urllib.request.urlopen(sys.argv[1] + "/.well-known/openid-configuration")))
assert md["issuer"] == "https://op.example", md["issuer"]
if "RS256" in md["id_token_signing_alg_values_supported"]:
    md.validate()
    print("valid")
else:
    for name in dir(md):
        if name.startswith("validate_") and name != "validate_id_token_signing_alg_values_supported":
            getattr(md, name)()
    print("valid but for RS256:", md["id_token_signing_alg_values_supported"])
`
	out, err := exec.Command(systemPython, "-c", script, srv.url).CombinedOutput()
	if err != nil {
		t.Fatalf("authlib: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "valid" {
		t.Skipf("Authlib: %s (RS256 keys are not on this branch yet)", got)
	}
}
