package auth

import (
	"bufio"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// docBlocks reads the code blocks of docs/tokens.md that follow a
// "<!-- test: NAME -->" line, by NAME.
func docBlocks(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../../docs/tokens.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blocks := map[string]string{}
	var name string
	var body []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case in && line == "```":
			blocks[name] = strings.Join(body, "\n") + "\n"
			in, name, body = false, "", nil
		case in:
			body = append(body, line)
		case strings.HasPrefix(line, "<!-- test: "):
			name = strings.TrimSuffix(strings.TrimPrefix(line, "<!-- test: "), " -->")
		case name != "" && strings.HasPrefix(line, "```"):
			in = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// runDoc runs the named block with the interpreter in dir and returns its
// output's lines; it skips when the interpreter is not installed.
func runDoc(t *testing.T, blocks map[string]string, name, dir string, interp ...string) []string {
	t.Helper()
	code, ok := blocks[name]
	if !ok {
		t.Fatalf("docs/tokens.md has no block %q", name)
	}
	if _, err := exec.LookPath(interp[0]); err != nil {
		t.Skipf("%s not installed", interp[0])
	}
	file := filepath.Join(dir, name+".script")
	if err := os.WriteFile(file, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(interp[0], append(interp[1:], file)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s: %v\n%s", name, err, stderr)
	}
	return strings.Fields(string(out))
}

func TestDocsSignedURL(t *testing.T) {
	blocks := docBlocks(t)
	v := mustNew(t, Options{URLSecret: []byte("change me")})
	for name, interp := range map[string][]string{
		"url-sh":     {"/bin/sh", "-e"},
		"url-python": {"python3"},
		"url-php":    {"php"},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "url-sh" {
				needOpenSSL(t)
			}
			out := runDoc(t, blocks, name, t.TempDir(), interp...)
			if len(out) != 1 {
				t.Fatalf("output %q", out)
			}
			u, err := url.Parse(out[0])
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			g, err := v.VerifyURL(u.EscapedPath(), q.Get("exp"), q.Get("sig"), time.Now())
			if err != nil {
				t.Fatalf("%s: %v", out[0], err)
			}
			if !g.Path || g.Expiry.Before(time.Now().Add(4*time.Minute)) {
				t.Fatalf("grant %+v", g)
			}
			_, err = v.VerifyURL("/push/host/longpoll/other.r1", q.Get("exp"), q.Get("sig"), time.Now())
			wantCheck(t, err, CheckSignature)
		})
	}
}

func TestDocsSignedHostID(t *testing.T) {
	blocks := docBlocks(t)
	v := mustNew(t, Options{URLSecret: []byte("change me")})
	for name, interp := range map[string][]string{
		"hostid-sh":     {"/bin/sh", "-e"},
		"hostid-python": {"python3"},
		"hostid-php":    {"php"},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "hostid-sh" {
				needOpenSSL(t)
			}
			out := runDoc(t, blocks, name, t.TempDir(), interp...)
			if len(out) != 1 {
				t.Fatalf("output %q", out)
			}
			g, err := v.VerifyHostID(out[0], []string{"news", "chat"}, time.Now())
			if err != nil {
				t.Fatalf("%s: %v", out[0], err)
			}
			if !g.Path || g.Expiry.Before(time.Now().Add(50*time.Minute)) {
				t.Fatalf("grant %+v", g)
			}
			_, err = v.VerifyHostID(out[0], []string{"chat"}, time.Now())
			wantCheck(t, err, CheckSignature)
		})
	}
}

func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
}

func TestDocsJWT(t *testing.T) {
	blocks := docBlocks(t)
	hs := mustNew(t, Options{Secret: []byte("change me"), Audience: "meteor"})
	check := func(t *testing.T, v *Verifier, tok string) {
		t.Helper()
		g, err := v.Verify(tok, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", tok, err)
		}
		if g.Subject != "user42" || !g.Allows("chat_1") || g.Allows("news") {
			t.Fatalf("grant %+v", g)
		}
	}
	for name, interp := range map[string][]string{
		"jwt-hs256-sh":     {"/bin/sh", "-e"},
		"jwt-hs256-python": {"python3"},
		"jwt-hs256-php":    {"php"},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "jwt-hs256-sh" {
				needOpenSSL(t)
			}
			out := runDoc(t, blocks, name, t.TempDir(), interp...)
			if len(out) != 1 {
				t.Fatalf("output %q", out)
			}
			check(t, hs, out[0])
			g, _ := hs.Verify(out[0], time.Now())
			if !g.AllowsPublish("chat_42") {
				t.Errorf("publish claim lost: %+v", g)
			}
		})
	}
	t.Run("keys", func(t *testing.T) {
		needOpenSSL(t)
		dir := t.TempDir()
		runDoc(t, blocks, "keys-sh", dir, "/bin/sh", "-e")
		var pems []byte
		for _, f := range []string{"public.pem", "ed25519-public.pem"} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			pems = append(pems, b...)
		}
		v := mustNew(t, Options{PublicKeys: pems, Audience: "meteor"})
		for _, name := range []string{"jwt-rs256-sh", "jwt-eddsa-sh"} {
			t.Run(name, func(t *testing.T) {
				out := runDoc(t, blocks, name, dir, "/bin/sh", "-e")
				if len(out) != 1 {
					t.Fatalf("output %q", out)
				}
				check(t, v, out[0])
			})
		}
		t.Run("jwt-pyjwt", func(t *testing.T) {
			if _, err := exec.LookPath("python3"); err != nil {
				t.Skip("python3 not installed")
			}
			if exec.Command("python3", "-c", "import jwt, cryptography").Run() != nil {
				t.Skip("PyJWT (with cryptography) not installed")
			}
			out := runDoc(t, blocks, "jwt-pyjwt", dir, "python3")
			if len(out) != 2 {
				t.Fatalf("output %q", out)
			}
			check(t, hs, out[0])
			check(t, v, out[1])
		})
	})
}
