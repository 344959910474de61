package reason

import "testing"

func TestNames(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range All() {
		s := r.String()
		if s == "" || s == "unknown" || s == "none" || seen[s] {
			t.Errorf("reason %d has name %q", r, s)
		}
		seen[s] = true
	}
	if Reason(200).String() != "unknown" || None.String() != "none" {
		t.Errorf("names of none/out-of-range")
	}
	// The names Meteor 1.06 logged, which log readers match.
	for r, want := range map[Reason]string{
		SlowConsumer: "slowConsumer", WriteStuck: "writeTimeout", MaxMessagesReached: "maxMessageCountReached",
		NewSubscriberWithSameID: "newSubscriberWithSameID", ServerShutdown: "shutdown", RemoteClosed: "remoteClosed",
		ResponseComplete: "responseComplete", MaxTimeReached: "maxTime", DisconnectRequested: "disconnectRequested",
		WriteFailed: "writeError", ChannelClosed: "channelClose",
	} {
		if r.String() != want {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), want)
		}
	}
}

// TestCodesDecide: a client decides by the close code alone, so the
// reasons that share a code must agree on whether to reconnect. None,
// RemoteClosed and Quit are never told to a client.
func TestCodesDecide(t *testing.T) {
	byCode := map[uint16]Reason{}
	for _, r := range All() {
		if r == RemoteClosed || r == Quit {
			continue
		}
		c := r.Code()
		if c != CodeNormal && (c < 1001 || c > 1014) && (c < 4000 || c > 4999) {
			t.Errorf("%v has code %d, outside the protocol's and the application's ranges", r, c)
		}
		if o, ok := byCode[c]; ok && o.Reconnect() != r.Reconnect() {
			t.Errorf("%v and %v share code %d but not Reconnect (%v, %v)", o, r, c, o.Reconnect(), r.Reconnect())
		}
		byCode[c] = r
	}
	if r, ok := ForCode(4000); !ok || r != ChannelClosed || r.Reconnect() {
		t.Errorf("ForCode(4000) = %v, %v", r, ok)
	}
	// A drain for a restart must bring the client back: 1012 (Service
	// Restart), reconnect.
	if r, ok := ForCode(1012); !ok || r != ServerRestart || !r.Reconnect() || r.String() != "restart" {
		t.Errorf("ForCode(1012) = %v, %v", r, ok)
	}
	if _, ok := ForCode(4999); ok {
		t.Error("ForCode(4999) found a reason")
	}
	if Reason(200).Code() != 1011 || Reason(200).Reconnect() {
		t.Error("an unknown reason must be a server error without reconnect")
	}
}
