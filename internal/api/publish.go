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
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
)

// defaultPublishTimeout is Limits.PublishTimeout's default.
const defaultPublishTimeout = 5 * time.Second

// maxBatch is the most messages one POST /api/publish may carry.
const maxBatch = 1000

// minBatchBody is the least body size a batch may have whatever
// MaxMessageBytes is, so that many small messages fit in one request.
const minBatchBody = 16 << 20

// errTooLarge is a request refused with 413.
type errTooLarge struct{ reason string }

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

// checkText returns a 413 error when text is over the limit.
func checkText(text string, limit int) error {
	if len(text) > limit {
		return &errTooLarge{fmt.Sprintf("message is %d bytes, the limit is %d", len(text), limit)}
	}
	return nil
}

// isJSON reports whether the request's body is JSON by its Content-Type.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// jsonBodyLimit is the largest JSON body that can hold one message of
// limit bytes: JSON may spell every byte as \u00XX.
func jsonBodyLimit(limit int) int64 { return 6*int64(limit) + 4096 }

// readBody reads at most limit bytes of r's body; a longer body is a 413
// error that says what (a "message" or a "request body") was too long.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, what string) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &errTooLarge{fmt.Sprintf("%s is %d bytes, the limit is %d", what, r.ContentLength, limit)}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, &errTooLarge{fmt.Sprintf("%s is more than %d bytes, the limit is %d", what, limit, limit)}
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
func parseMessageBody(b []byte, limit int) (string, error) {
	var body struct {
		Text *string `json:"text"`
	}
	if err := decodeJSON(b, &body); err != nil {
		return "", err
	}
	if body.Text == nil {
		return "", badRequest(`missing "text"`)
	}
	if err := checkText(*body.Text, limit); err != nil {
		return "", err
	}
	return *body.Text, nil
}

// parsePublishBody parses the body of POST /api/publish: either
// {"messages":[{"channel":"a","text":"x"},...]} or
// {"channels":["a","b"],"text":"x"}. Every message is checked before any is
// published, so that a refused batch publishes nothing.
func parsePublishBody(b []byte, limit int) ([]item, error) {
	var body struct {
		Messages []struct {
			Channel *string `json:"channel"`
			Text    *string `json:"text"`
		} `json:"messages"`
		Channels []string `json:"channels"`
		Text     *string  `json:"text"`
	}
	if err := decodeJSON(b, &body); err != nil {
		return nil, err
	}
	multi := body.Channels != nil || body.Text != nil
	switch {
	case body.Messages != nil && multi:
		return nil, badRequest(`give either "messages" or "channels" and "text", not both`)
	case body.Messages != nil:
		if len(body.Messages) == 0 {
			return nil, badRequest(`"messages" is empty`)
		}
		if len(body.Messages) > maxBatch {
			return nil, &errTooLarge{fmt.Sprintf("%d messages in one request, the limit is %d", len(body.Messages), maxBatch)}
		}
		out := make([]item, len(body.Messages))
		for i, m := range body.Messages {
			if m.Channel == nil {
				return nil, badRequest(`messages[%d]: missing "channel"`, i)
			}
			if m.Text == nil {
				return nil, badRequest(`messages[%d]: missing "text"`, i)
			}
			if err := checkChannel(*m.Channel); err != nil {
				return nil, prefix(fmt.Sprintf("messages[%d]", i), err)
			}
			if err := checkText(*m.Text, limit); err != nil {
				return nil, prefix(fmt.Sprintf("messages[%d]", i), err)
			}
			out[i] = item{Channel: *m.Channel, Text: *m.Text}
		}
		return out, nil
	case multi:
		if body.Text == nil {
			return nil, badRequest(`missing "text"`)
		}
		if len(body.Channels) == 0 {
			return nil, badRequest(`"channels" is empty`)
		}
		if len(body.Channels) > maxBatch {
			return nil, &errTooLarge{fmt.Sprintf("%d channels in one request, the limit is %d", len(body.Channels), maxBatch)}
		}
		if err := checkText(*body.Text, limit); err != nil {
			return nil, err
		}
		out := make([]item, len(body.Channels))
		for i, c := range body.Channels {
			if err := checkChannel(c); err != nil {
				return nil, prefix(fmt.Sprintf("channels[%d]", i), err)
			}
			out[i] = item{Channel: c, Text: *body.Text}
		}
		return out, nil
	default:
		return nil, badRequest(`give "messages", or "channels" and "text"`)
	}
}

// prefix puts where before the reason of a 400 or 413 error.
func prefix(where string, err error) error {
	switch e := err.(type) {
	case *errBadRequest:
		return &errBadRequest{where + ": " + e.reason}
	case *errTooLarge:
		return &errTooLarge{where + ": " + e.reason}
	}
	return err
}

// fail answers a request refused by the parsing above.
func fail(w http.ResponseWriter, err error) {
	var tl *errTooLarge
	var br *errBadRequest
	switch {
	case errors.As(err, &tl):
		writeError(w, http.StatusRequestEntityTooLarge, tl.reason)
	case errors.As(err, &br):
		writeError(w, http.StatusBadRequest, br.reason)
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
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

// publish publishes items in order and counts them. On an engine error it
// returns what was published before it. Once shutdown began it publishes
// nothing, as the controller accepts nothing: subscribers are being
// drained and would not get the messages.
func (s *Server) publish(ctx context.Context, items []item) ([]published, error) {
	if !s.ready.Load() {
		return []published{}, engine.ErrClosed
	}
	pubs := make([]engine.Publication, len(items))
	for i, it := range items {
		pubs[i] = engine.Publication{Channel: it.Channel, Text: it.Text}
	}
	timeout := s.limits.Load().PublishTimeout
	if timeout <= 0 {
		timeout = defaultPublishTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// One engine call for the whole batch: one round trip to a store.
	msgs, err := s.hub.Publish(ctx, pubs...)
	out := make([]published, len(msgs))
	for i, m := range msgs {
		out[i] = published{ID: m.ID, Channel: m.Channel, Time: m.Time.UnixMilli()}
	}
	s.stats.Add(stats.UniqueMessages, int64(len(out)))
	s.met.Published(len(out))
	return out, err
}

// publishOne serves POST /api/channels/{channel}/messages.
func (s *Server) publishOne(w http.ResponseWriter, r *http.Request) {
	ch := r.PathValue("channel")
	if err := checkChannel(ch); err != nil {
		fail(w, err)
		return
	}
	limit := s.limits.Load().MaxMessageBytes
	var text string
	if isJSON(r) {
		b, err := readBody(w, r, jsonBodyLimit(limit), "request body")
		if err == nil {
			text, err = parseMessageBody(b, limit)
		}
		if err != nil {
			fail(w, err)
			return
		}
	} else {
		b, err := readBody(w, r, int64(limit), "message")
		if err != nil {
			fail(w, err)
			return
		}
		text = string(b)
	}
	if !s.allowRate(w, r, 1) {
		return
	}
	res, err := s.publish(r.Context(), []item{{Channel: ch, Text: text}})
	if err != nil {
		s.failEngine(w, "publishing", err)
		return
	}
	writeJSON(w, http.StatusCreated, res[0])
}

// publishBatch serves POST /api/publish.
func (s *Server) publishBatch(w http.ResponseWriter, r *http.Request) {
	if !isJSON(r) {
		writeError(w, http.StatusUnsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
		return
	}
	limit := s.limits.Load().MaxMessageBytes
	b, err := readBody(w, r, max(minBatchBody, jsonBodyLimit(limit)), "request body")
	if err != nil {
		fail(w, err)
		return
	}
	items, err := parsePublishBody(b, limit)
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
	}) || !s.allowRate(w, r, len(items)) {
		return
	}
	res, err := s.publish(r.Context(), items)
	if err != nil {
		// What was published stays published: the client is told which,
		// so that it retries only the rest.
		s.failEngine(w, "publishing", err, "results", res, "published", len(res))
		return
	}
	writeJSON(w, http.StatusCreated, map[string][]published{"results": res})
}
