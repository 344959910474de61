package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meteorpush/meteor/internal/api"
	"github.com/meteorpush/meteor/internal/config"
)

func keyLine(name, secret, rest string) string {
	h := sha256.Sum256([]byte(secret))
	return name + " sha256:" + hex.EncodeToString(h[:]) + " " + rest + "\n"
}

func TestParseKeys(t *testing.T) {
	good := "# a comment\n\n" + keyLine("site", "s1", "publish chat_* news") + keyLine("ops", "s2", "read,ADMIN *")
	ks, err := api.ParseKeys([]byte(good))
	if err != nil || ks.Len() != 2 {
		t.Fatalf("ParseKeys(good) = %v keys, %v", ks.Len(), err)
	}
	for _, tt := range []struct{ file, want string }{
		{"site sha256:00 publish x\n", "line 1: key \"site\": the secret's hash must be sha256: and 64 hexadecimal digits"},
		{"site s1 publish x\n", "line 1: key \"site\": the secret's hash"},
		{"\n" + keyLine("site", "s1", "write x"), `line 2: key "site": unknown scope "write"`},
		{keyLine("site", "s1", "publish a.b"), `key "site": channel pattern "a.b"`},
		{keyLine("site", "s1", "publish a*b"), `channel pattern "a*b"`},
		{keyLine("site", "s1", "publish"), "line 1: want <name> sha256:<hex> <scopes> <channel pattern>..., got 3 fields"},
		{keyLine("si.te", "s1", "publish x"), `key name "si.te"`},
		{keyLine("a", "s1", "publish x") + keyLine("a", "s2", "publish x"), `line 2: key "a" named twice`},
		{keyLine("a", "s1", "publish x") + keyLine("b", "s1", "publish x"), `line 2: key "b" has the secret of key "a"`},
	} {
		_, err := api.ParseKeys([]byte(tt.file))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseKeys(%q) = %v, want an error with %q", tt.file, err, tt.want)
		}
	}
}

// TestAPIKeys: a key may do what its scopes say to the channels its
// patterns grant, and gets 403 with why otherwise; APIToken may do
// everything; a reload reads the file again.
func TestAPIKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	file := keyLine("site", "pub-secret", "publish chat_* news") + keyLine("reader", "read-secret", "read chat_*") + keyLine("ops", "ops-secret", "admin,read *")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := start(t, func(c *config.Config) { c.APIToken, c.APIKeysFile = "root", path })
	as := func(token string) { ts.token = token }

	as("pub-secret")
	if r := ts.do("POST", "/api/channels/chat_1/messages", "text/plain", "hi"); r.status != http.StatusCreated {
		t.Fatalf("site publishing to chat_1: %d %s", r.status, r.body)
	}
	ts.do("POST", "/api/channels/news/messages", "text/plain", "n")
	for _, tt := range []struct {
		method, path, body string
		want               int
		why                string
	}{
		{"POST", "/api/channels/other/messages", "x", 403, "key site is not granted channel other"},
		{"POST", "/api/publish", `{"messages":[{"channel":"chat_2","text":"ok"},{"channel":"other","text":"no"}]}`, 403, "messages[1]: key site is not granted channel other"},
		{"POST", "/api/publish", `{"channels":["news","secret"],"text":"no"}`, 403, "messages[1]: key site is not granted channel secret"},
		{"GET", "/api/channels/chat_1", "", 403, "key site may not read (its scopes: publish)"},
		{"DELETE", "/api/channels/chat_1/messages", "", 403, "key site may not admin (its scopes: publish)"},
		{"GET", "/api/stats", "", 403, "key site may not admin"},
		{"GET", "/metrics", "", 403, "key site may not admin"},
	} {
		ct := "text/plain"
		if strings.HasPrefix(tt.body, "{") {
			ct = "application/json"
		}
		r := ts.do(tt.method, tt.path, ct, tt.body)
		if r.status != tt.want || !strings.Contains(r.errorText(t), tt.why) {
			t.Errorf("site %s %s = %d %s, want %d %q", tt.method, tt.path, r.status, r.body, tt.want, tt.why)
		}
	}

	as("read-secret")
	if r := ts.do("GET", "/api/channels/chat_1", "", nil); r.status != http.StatusOK || r.json(t)["messages"] != 1.0 {
		t.Errorf("reader reading chat_1 (one message: the refused batch published none): %d %s", r.status, r.body)
	}
	r := ts.do("GET", "/api/channels", "", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"chat_1"`) || strings.Contains(string(r.body), `"news"`) {
		t.Errorf("reader's channel list shows only chat_*: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", "/api/channels/chat_1/messages", "text/plain", "x"); r.status != http.StatusForbidden {
		t.Errorf("reader publishing: %d", r.status)
	}

	as("ops-secret")
	if r := ts.do("GET", "/api/stats", "", nil); r.status != http.StatusOK {
		t.Errorf("ops stats: %d %s", r.status, r.body)
	}
	as("root")
	if r := ts.do("POST", "/api/channels/anything/messages", "text/plain", "x"); r.status != http.StatusCreated {
		t.Errorf("APIToken publishing: %d %s", r.status, r.body)
	}
	as("nope")
	if r := ts.do("GET", "/api/stats", "", nil); r.status != http.StatusUnauthorized || r.errorText(t) != "wrong token" {
		t.Errorf("a wrong token: %d %s", r.status, r.body)
	}

	// HUP: the file is read again; a secret that left it no longer works.
	if err := os.WriteFile(path, []byte(keyLine("site", "new-secret", "publish *")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ts.Reload(ts.cfg); err != nil {
		t.Fatal(err)
	}
	as("pub-secret")
	if r := ts.do("POST", "/api/channels/chat_1/messages", "text/plain", "x"); r.status != http.StatusUnauthorized {
		t.Errorf("an old secret after the reload: %d", r.status)
	}
	as("new-secret")
	if r := ts.do("POST", "/api/channels/other/messages", "text/plain", "x"); r.status != http.StatusCreated {
		t.Errorf("the new key after the reload: %d %s", r.status, r.body)
	}
	// A file that no longer parses: the reload fails and the keys stay.
	os.WriteFile(path, []byte("broken\n"), 0o600)
	if err := ts.Reload(ts.cfg); err == nil || !strings.Contains(err.Error(), "APIKeysFile "+path+": line 1") {
		t.Errorf("reload of a broken file: %v", err)
	}
	if r := ts.do("POST", "/api/channels/other/messages", "text/plain", "x"); r.status != http.StatusCreated {
		t.Errorf("the key after a failed reload: %d", r.status)
	}
}

// TestKeysOffLoopback: an APIKeysFile is a credential: the API may listen
// off loopback with keys and no APIToken, and then requires a key.
func TestKeysOffLoopback(t *testing.T) {
	ks, err := api.ParseKeys([]byte(keyLine("site", "s", "publish *")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.New(api.Options{IP: "0.0.0.0", Keys: ks}); err != nil {
		t.Errorf("keys, no token, off loopback: %v", err)
	}
	if _, err := api.New(api.Options{IP: "0.0.0.0"}); err == nil {
		t.Error("no credential off loopback accepted")
	}
}
