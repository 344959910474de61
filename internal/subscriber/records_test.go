package subscriber_test

import (
	"strings"
	"testing"

	"github.com/meteorpush/meteor/internal/testkit"
)

// TestJoinLeaveRecords: what an idle subscriber keeps for its leave
// records (the address, the hostid and the channel names, compacted into
// one small string; no user agent) still gives one join and one leave
// record per channel, in request order, with the same fields as before.
func TestJoinLeaveRecords(t *testing.T) {
	ts := mStart(t, nil)
	legacy := ts.get("/push/host1/xhrinteractive/alpha/beta.r1", "User-Agent: legacy-agent")
	legacy.header()
	sse := ts.get("/sse/gamma/delta", "User-Agent: sse-agent")
	sse.header()
	ts.waitSubscribers("alpha", 1)
	ts.waitSubscribers("beta", 1)
	ts.waitSubscribers("gamma", 1)
	ts.waitSubscribers("delta", 1)
	legacy.nc.Close()
	sse.nc.Close()
	ts.waitIdle()
	want := []string{
		`msg=joinchannel ip=127.0.0.1 hostid=host1 channel=alpha mode=xhrinteractive start=1 useragent=legacy-agent`,
		`msg=joinchannel ip=127.0.0.1 hostid=host1 channel=beta mode=xhrinteractive start=1 useragent=legacy-agent`,
		`msg=joinchannel ip=127.0.0.1 transport=sse channel=gamma start=1 useragent=sse-agent`,
		`msg=joinchannel ip=127.0.0.1 transport=sse channel=delta start=1 useragent=sse-agent`,
		`msg=leavechannel ip=127.0.0.1 hostid=host1 channel=alpha seconds=0 messages=0 bytes=`,
		`msg=leavechannel ip=127.0.0.1 hostid=host1 channel=beta seconds=0 messages=0 bytes=`,
		`msg=leavechannel ip=127.0.0.1 transport=sse channel=gamma seconds=0 messages=0 bytes=`,
		`msg=leavechannel ip=127.0.0.1 transport=sse channel=delta seconds=0 messages=0 bytes=`,
	}
	testkit.Eventually(t, "the leave records", func() bool {
		return strings.Count(ts.log.String(), "msg=leavechannel") == 4
	})
	log := ts.log.String()
	for _, w := range want {
		if !strings.Contains(log, w) {
			t.Errorf("no record %q", w)
		}
	}
	for _, ch := range []string{"alpha", "beta", "gamma", "delta"} {
		if n := strings.Count(log, "msg=leavechannel ") - strings.Count(log, "channel="+ch+" seconds"); n != 3 {
			t.Errorf("channel %s: %d leave records, want 1", ch, 4-n)
		}
	}
	if strings.Count(log, "reason=remoteClosed") != 4 {
		t.Errorf("want 4 remoteClosed leave records:\n%s", log)
	}
}

// TestPollJoinLeavePairs: a poll, legacy or JSON, is a subscription too:
// each logs one joinchannel and one leavechannel line per channel, so that
// a site that counts stays from its log counts the polls'.
func TestPollJoinLeavePairs(t *testing.T) {
	ts := mStart(t, nil)
	ts.publish("pa", "one")
	ts.publish("pb", "two")
	ts.get("/push/h2/simplepoll/pa").body()
	ts.get("/poll/pb?since=pb:0").body()
	testkit.Eventually(t, "the leave records", func() bool {
		return strings.Count(ts.log.String(), "msg=leavechannel") == 2
	})
	log := ts.log.String()
	for _, w := range []string{
		`msg=joinchannel ip=127.0.0.1 hostid=h2 channel=pa mode=simplepoll`,
		`msg=leavechannel ip=127.0.0.1 hostid=h2 channel=pa seconds=0`,
		`msg=joinchannel ip=127.0.0.1 transport=longpoll channel=pb`,
		`msg=leavechannel ip=127.0.0.1 transport=longpoll channel=pb seconds=0 messages=1`,
	} {
		if !strings.Contains(log, w) {
			t.Errorf("no record %q in\n%s", w, log)
		}
	}
	if n := strings.Count(log, "msg=joinchannel"); n != 2 {
		t.Errorf("%d join records, want 2:\n%s", n, log)
	}
}
