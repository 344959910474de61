package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meteorpush/meteor/internal/channel"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
)

// defaultPublishTimeout is Limits.PublishTimeout's default.
const defaultPublishTimeout = 5 * time.Second

// maxBatch is the most messages one POST /api/publish may carry.
const maxBatch = 1000

// minBatchBody is the least body size a batch may have whatever
// MaxMessageBytes is, so that many small messages fit in one request. It
// also bounds a single message's body when its channel has no
// MaxMessageBytes.
const minBatchBody = 16 << 20

// errTooLarge is a request refused with 413. A body longer than the
// message it may hold (tooLarge) is counted as a publication refused.
type errTooLarge struct {
	reason   string
	tooLarge bool
}

func (e *errTooLarge) Error() string { return e.reason }

// errBadRequest is a request refused with 400.
type errBadRequest struct{ reason string }

func (e *errBadRequest) Error() string { return e.reason }

func badRequest(format string, args ...any) error {
	return &errBadRequest{fmt.Sprintf(format, args...)}
}

// item is one message to publish.
type item struct {
	Channel string
	Text    string
}

// published is one published message as the API reports it.
type published struct {
	ID      uint64 `json:"id"`
	Channel string `json:"channel"`
	Time    int64  `json:"time"` // Unix milliseconds
}

// checkChannel returns a 400 error when name is not a channel name
// subscribers can ask for.
func checkChannel(name string) error {
	if !channel.Valid(name) {
		return badRequest("invalid channel name %q: %s", name, channel.Rule)
	}
	return nil
}

// isJSON reports whether the request's body is JSON by its Content-Type.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// messageBodyLimit is the largest body that holds one message of at most
// limit bytes (a channel's MaxMessageBytes, 0 for none) as it is, and
// jsonBodyLimit the largest JSON body: JSON may spell every byte as
// \u00XX. The bodies are bounded here, before their messages reach the
// hub, which decides whether each message is too large
// (hub.Policy.MaxMessageBytes, the one rule).
func messageBodyLimit(limit int) int64 {
	if limit <= 0 {
		return minBatchBody
	}
	return int64(limit)
}

func jsonBodyLimit(limit int) int64 {
	if limit <= 0 {
		return minBatchBody
	}
	return 6*int64(limit) + 4096
}

// readBody reads at most limit bytes of r's body; a longer body is a 413
// error that says what (a "message" or a "request body") was too long.
// Refused, the body is not read further: net/http then closes the
// connection after the answer rather than reading what a client sends
// for ever.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, what string) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &errTooLarge{fmt.Sprintf("%s is %d bytes, the limit is %d", what, r.ContentLength, limit), true}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, &errTooLarge{fmt.Sprintf("%s is more than %d bytes, the limit is %d", what, limit, limit), true}
		}
		return nil, badRequest("reading the body: %v", err)
	}
	return b, nil
}

// decodeJSON decodes exactly one JSON value from b into v, refusing unknown
// fields and trailing data.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return badRequest("invalid JSON: empty body")
		}
		return badRequest("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("invalid JSON: data after the JSON value")
	}
	return nil
}

// parseMessageBody parses the JSON body of POST
// /api/channels/{channel}/messages: {"text":"..."}.
func parseMessageBody(b []byte) (string, error) {
	var body struct {
		Text *string `json:"text"`
	}
	if err := decodeJSON(b, &body); err != nil {
		return "", err
	}
	if body.Text == nil {
		return "", badRequest(`missing "text"`)
	}
	return *body.Text, nil
}

// parsePublishBody parses the body of POST /api/publish: either
// {"messages":[{"channel":"a","text":"x"},...]} or
// {"channels":["a","b"],"text":"x"}. Every message is checked before any is
// published, so that a refused batch publishes nothing; the sizes are the
// hub's to check (Hub.CheckSize). multi reports the channels form.
func parsePublishBody(b []byte) (items []item, multi bool, err error) {
	var body struct {
		Messages []struct {
			Channel *string `json:"channel"`
			Text    *string `json:"text"`
		} `json:"messages"`
		Channels []string `json:"channels"`
		Text     *string  `json:"text"`
	}
	if err := decodeJSON(b, &body); err != nil {
		return nil, false, err
	}
	multi = body.Channels != nil || body.Text != nil
	switch {
	case body.Messages != nil && multi:
		return nil, false, badRequest(`give either "messages" or "channels" and "text", not both`)
	case body.Messages != nil:
		if len(body.Messages) == 0 {
			return nil, false, badRequest(`"messages" is empty`)
		}
		if len(body.Messages) > maxBatch {
			return nil, false, &errTooLarge{fmt.Sprintf("%d messages in one request, the limit is %d", len(body.Messages), maxBatch), false}
		}
		out := make([]item, len(body.Messages))
		for i, m := range body.Messages {
			if m.Channel == nil {
				return nil, false, badRequest(`messages[%d]: missing "channel"`, i)
			}
			if m.Text == nil {
				return nil, false, badRequest(`messages[%d]: missing "text"`, i)
			}
			if err := checkChannel(*m.Channel); err != nil {
				return nil, false, prefix(fmt.Sprintf("messages[%d]", i), err)
			}
			out[i] = item{Channel: *m.Channel, Text: *m.Text}
		}
		return out, multi, nil
	case multi:
		if body.Text == nil {
			return nil, false, badRequest(`missing "text"`)
		}
		if len(body.Channels) == 0 {
			return nil, false, badRequest(`"channels" is empty`)
		}
		if len(body.Channels) > maxBatch {
			return nil, false, &errTooLarge{fmt.Sprintf("%d channels in one request, the limit is %d", len(body.Channels), maxBatch), false}
		}
		out := make([]item, len(body.Channels))
		for i, c := range body.Channels {
			if err := checkChannel(c); err != nil {
				return nil, false, prefix(fmt.Sprintf("channels[%d]", i), err)
			}
			out[i] = item{Channel: c, Text: *body.Text}
		}
		return out, multi, nil
	default:
		return nil, false, badRequest(`give "messages", or "channels" and "text"`)
	}
}

// prefix puts where before the reason of a 400 or 413 error.
func prefix(where string, err error) error {
	switch e := err.(type) {
	case *errBadRequest:
		return &errBadRequest{where + ": " + e.reason}
	case *errTooLarge:
		return &errTooLarge{where + ": " + e.reason, e.tooLarge}
	}
	return err
}

// fail answers a request refused by the parsing above.
func fail(w http.ResponseWriter, err error) {
	var tl *errTooLarge
	var br *errBadRequest
	switch {
	case errors.As(err, &tl) && tl.tooLarge:
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": tl.reason, "reason": hub.ReasonTooLarge})
	case errors.As(err, &tl):
		writeError(w, http.StatusRequestEntityTooLarge, tl.reason)
	case errors.As(err, &br):
		writeError(w, http.StatusBadRequest, br.reason)
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// failBody is fail for a refused publish body, which it counts when the
// body was longer than the message it may hold.
func (s *Server) failBody(w http.ResponseWriter, err error) {
	if tl := (*errTooLarge)(nil); errors.As(err, &tl) && tl.tooLarge {
		s.met.PublishRefused(hub.ReasonTooLarge, 1)
	}
	fail(w, err)
}

// refused answers publications the hub refused by their channel's
// policy (counted there): 413 for a message too large, 429 with
// Retry-After for one past its channel's publish rate, with the reason in
// the JSON ("too large", "rate"). where, when not "", names the message
// refused in a batch: messages[i] or channels[i]. extra is added to the
// body (a batch's results so far).
func refused(w http.ResponseWriter, re *hub.RefusedError, where string, extra ...any) {
	status := http.StatusRequestEntityTooLarge
	if re.Reason == hub.ReasonRate {
		status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.Itoa(re.RetryAfterSeconds()))
	}
	msg := re.Error()
	if where != "" {
		msg = fmt.Sprintf("%s[%d]: %s", where, re.Index, msg)
	}
	body := map[string]any{"error": msg, "reason": re.Reason}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	writeJSON(w, status, body)
}

// failEngine answers a request that the engine refused: 503 with a
// jittered Retry-After when the store cannot be reached (or the server is
// shutting down), 500 otherwise. The body never carries the engine's text,
// which goes to the log, rate-limited. extra, when not nil, is added to
// the body (a batch's results so far).
func (s *Server) failEngine(w http.ResponseWriter, what string, err error, extra ...any) {
	body := map[string]any{}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, engine.ErrClosed) && !s.ready.Load():
		status, body["error"] = http.StatusServiceUnavailable, "the server is shutting down"
	case engine.Unavailable(err):
		status, body["error"] = http.StatusServiceUnavailable, what+": store unavailable"
		body["reason"] = reason.StoreUnavailable.String()
		w.Header().Set("Retry-After", strconv.Itoa(engine.RetryAfter()))
	default:
		body["error"] = what + " failed"
		body["reason"] = reason.ServerError.String()
	}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	s.engineLog.Warn(s.log, "api: "+what+" failed", "status", status, "err", err)
	writeJSON(w, status, body)
}

// publish publishes items in order and counts them. On an engine error,
// or a publication the hub refused (*hub.RefusedError), it returns what
// was published before it. Once shutdown began it publishes nothing, as
// the controller accepts nothing: subscribers are being drained and would
// not get the messages.
func (s *Server) publish(ctx context.Context, items []item) ([]published, error) {
	if !s.ready.Load() {
		return []published{}, engine.ErrClosed
	}
	timeout := s.limits.Load().PublishTimeout
	if timeout <= 0 {
		timeout = defaultPublishTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// One engine call for the whole batch: one round trip to a store.
	msgs, err := s.hub.Publish(ctx, publications(items)...)
	out := make([]published, len(msgs))
	for i, m := range msgs {
		out[i] = published{ID: m.ID, Channel: m.Channel, Time: m.Time.UnixMilli()}
	}
	s.stats.Add(stats.UniqueMessages, int64(len(out)))
	s.met.Published(len(out))
	return out, err
}

func publications(items []item) []engine.Publication {
	pubs := make([]engine.Publication, len(items))
	for i, it := range items {
		pubs[i] = engine.Publication{Channel: it.Channel, Text: it.Text}
	}
	return pubs
}

// publishOne serves POST /api/channels/{channel}/messages.
func (s *Server) publishOne(w http.ResponseWriter, r *http.Request) {
	ch := r.PathValue("channel")
	if err := checkChannel(ch); err != nil {
		fail(w, err)
		return
	}
	limit := s.hub.Policy(ch).MaxMessageBytes
	var text string
	if isJSON(r) {
		b, err := readBody(w, r, jsonBodyLimit(limit), "request body")
		if err == nil {
			text, err = parseMessageBody(b)
		}
		if err != nil {
			s.failBody(w, err)
			return
		}
	} else {
		b, err := readBody(w, r, messageBodyLimit(limit), "message")
		if err != nil {
			s.failBody(w, err)
			return
		}
		text = string(b)
	}
	if err := s.hub.CheckSize(engine.Publication{Channel: ch, Text: text}); err != nil {
		refused(w, err.(*hub.RefusedError), "")
		return
	}
	if !s.allowRate(w, r, 1) {
		return
	}
	res, err := s.publish(r.Context(), []item{{Channel: ch, Text: text}})
	if re := (*hub.RefusedError)(nil); errors.As(err, &re) {
		refused(w, re, "")
		return
	}
	if err != nil {
		s.failEngine(w, "publishing", err)
		return
	}
	writeJSON(w, http.StatusCreated, res[0])
}

// publishBatch serves POST /api/publish. A batch with a message too large
// for its channel publishes nothing (413); one past a channel's publish
// rate publishes the messages before it, named in a 429 with Retry-After,
// so that the client sends only the rest again.
func (s *Server) publishBatch(w http.ResponseWriter, r *http.Request) {
	if !isJSON(r) {
		writeError(w, http.StatusUnsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
		return
	}
	// The body is read before its channels are known: it is bounded by
	// the policy of the empty name, which no channel has: the largest
	// MaxMessageBytes of any namespace (each message is then checked
	// against its own channel's).
	limit := s.hub.Policy("").MaxMessageBytes
	b, err := readBody(w, r, max(minBatchBody, jsonBodyLimit(limit)), "request body")
	if err != nil {
		s.failBody(w, err)
		return
	}
	items, multi, err := parsePublishBody(b)
	if err != nil {
		fail(w, err)
		return
	}
	if !s.allowChannels(w, r, func(yield func(int, string) bool) {
		for i, it := range items {
			if !yield(i, it.Channel) {
				return
			}
		}
	}) {
		return
	}
	// The channels form ("channels" and "text") names the channel whose
	// limit the text is over; the messages form the message.
	where := "messages"
	if multi {
		where = "channels"
	}
	// Sizes first: a batch refused as too large publishes nothing, so it
	// takes nothing from the credential's rate either.
	if err := s.hub.CheckSize(publications(items)...); err != nil {
		refused(w, err.(*hub.RefusedError), where)
		return
	}
	if !s.allowRate(w, r, len(items)) {
		return
	}
	res, err := s.publish(r.Context(), items)
	if re := (*hub.RefusedError)(nil); errors.As(err, &re) {
		refused(w, re, where, "results", res, "published", len(res))
		return
	}
	if err != nil {
		// What was published stays published: the client is told which,
		// so that it retries only the rest.
		s.failEngine(w, "publishing", err, "results", res, "published", len(res))
		return
	}
	writeJSON(w, http.StatusCreated, map[string][]published{"results": res})
}
