package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/meteorpush/meteor/internal/channel"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/hub"
)

// FuzzPublishBody feeds parsePublishBody arbitrary bodies: it must never
// panic, must refuse with a 400 or 413 error only, and what it accepts must
// be publishable: at least one message, each to a valid channel, none over
// the limit once the hub's size check (Hub.CheckSize, which publishBatch
// makes) passed it. The seeds are in testdata/fuzz/FuzzPublishBody.
func FuzzPublishBody(f *testing.F) {
	f.Add([]byte(`{"messages":[{"channel":"a","text":"x"}]}`), 16)
	f.Add([]byte(`{"channels":["a","b"],"text":"x"}`), 16)
	h := hub.New(memory.New(engine.Limits{MaxMessages: 1}), hub.Options{})
	f.Fuzz(func(t *testing.T, body []byte, limit int) {
		limit = max(1, limit%(1<<16))
		h.SetPolicy(func(string) hub.Policy { return hub.Policy{MaxMessageBytes: limit} })
		items, _, err := parsePublishBody(body)
		if err != nil {
			var tl *errTooLarge
			var br *errBadRequest
			if !errors.As(err, &tl) && !errors.As(err, &br) {
				t.Fatalf("error %T %v is neither 400 nor 413", err, err)
			}
			if items != nil {
				t.Fatalf("items %v with error %v", items, err)
			}
			return
		}
		if len(items) == 0 || len(items) > maxBatch {
			t.Fatalf("%d items accepted", len(items))
		}
		if err := h.CheckSize(publications(items)...); err != nil {
			var re *hub.RefusedError
			if !errors.As(err, &re) || re.Reason != hub.ReasonTooLarge || len(items[re.Index].Text) <= limit {
				t.Fatalf("CheckSize refused %v", err)
			}
			return
		}
		for i, it := range items {
			if !channel.Valid(it.Channel) {
				t.Fatalf("items[%d]: invalid channel %q accepted", i, it.Channel)
			}
			if len(it.Text) > limit {
				t.Fatalf("items[%d]: %d bytes accepted, limit %d", i, len(it.Text), limit)
			}
		}
	})
}

// FuzzParseKeys: no APIKeysFile crashes the parser, and every key it
// accepts has a name, a scope and valid channel patterns.
func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("site sha256:" + strings.Repeat("ab", 32) + " publish chat_* news\n# c\n\nops sha256:" + strings.Repeat("cd", 32) + " read,admin *\n"))
	f.Add([]byte("a sha256:zz publish x\n"))
	f.Add([]byte("a sha256:" + strings.Repeat("0", 64) + " publish,,read *\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := ParseKeys(data)
		if err == nil && ks.Len() > strings.Count(string(data), "\n")+1 {
			t.Fatalf("%d keys from %d lines", ks.Len(), strings.Count(string(data), "\n")+1)
		}
	})
}
