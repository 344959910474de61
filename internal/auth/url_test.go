package auth

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestSignedURL(t *testing.T) {
	secret := []byte("url secret")
	v := mustNew(t, Options{URLSecret: secret})
	path := "/push/host/longpoll/chat.r1"
	exp, sig := SignURL(secret, path, now.Add(time.Minute))
	if exp != strconv.FormatInt(now.Add(time.Minute).Unix(), 10) {
		t.Fatalf("exp = %q", exp)
	}
	g, err := v.VerifyURL(path, exp, sig, now)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Path || g.Channels != nil || !g.Expiry.Equal(now.Add(time.Minute)) || !g.Allows("chat") || g.AllowsPublish("chat") {
		t.Fatalf("grant %+v", g)
	}

	_, err = v.VerifyURL(path, exp, sig, now.Add(time.Minute))
	wantCheck(t, err, CheckExpired)
	vl := mustNew(t, Options{URLSecret: secret, Leeway: time.Minute})
	if _, err := vl.VerifyURL(path, exp, sig, now.Add(90*time.Second)); err != nil {
		t.Errorf("within leeway: %v", err)
	}

	_, err = v.VerifyURL("/push/host/longpoll/admin.r1", exp, sig, now)
	wantCheck(t, err, CheckSignature)
	_, err = v.VerifyURL(path, strconv.FormatInt(now.Add(time.Hour).Unix(), 10), sig, now)
	wantCheck(t, err, CheckSignature)
	_, err = v.VerifyURL(path, exp, sig[:len(sig)-1]+"A", now)
	wantCheck(t, err, CheckSignature)
	_, err = v.VerifyURL(path, exp, sig+"=", now)
	wantCheck(t, err, CheckSignature)
	// base64 decoding skips CR and LF: a signature spelled with one is
	// still refused (FuzzVerifyURL found this).
	for _, spelled := range []string{sig[:20] + "\r" + sig[20:], sig[:20] + "\n" + sig[20:], sig + "\r\n"} {
		_, err = v.VerifyURL(path, exp, spelled, now)
		wantCheck(t, err, CheckSignature)
	}
	_, wrongSig := SignURL([]byte("other"), path, now.Add(time.Minute))
	_, err = v.VerifyURL(path, exp, wrongSig, now)
	wantCheck(t, err, CheckSignature)

	for _, bad := range []string{"-1", "+5", "1.5", "1e9", " 1", "99999999999999999999", "9223372036854775808"} {
		_, err := v.VerifyURL(path, bad, sig, now)
		wantCheck(t, err, CheckMalformed)
	}
	_, err = v.VerifyURL(path, "", sig, now)
	wantCheck(t, err, CheckMissing)
	_, err = v.VerifyURL(path, exp, "", now)
	wantCheck(t, err, CheckMissing)

	// JWT-only verifiers have no URL secret.
	_, err = mustNew(t, Options{Secret: secret}).VerifyURL(path, exp, sig, now)
	wantCheck(t, err, CheckSignature)
	if !errors.Is(err, ErrUnconfigured) {
		t.Errorf("err = %v", err)
	}
}
