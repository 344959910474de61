package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/gobwas/ws"

	"github.com/meteorpush/meteor/internal/wire"
)

// clientFrame builds a masked client frame.
func clientFrame(op byte, fin bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := [4]byte{1, 2, 3, 4}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

func TestNextFrame(t *testing.T) {
	text := clientFrame(0x1, true, []byte(`{"op":"ping"}`))
	f, n, err := wire.NextFrame(append(bytes.Clone(text), 0x89), false, 1024)
	if err != nil || n != len(text) || f.Op != ws.OpText || !f.Fin || string(f.Payload) != `{"op":"ping"}` {
		t.Fatalf("text frame: %+v %d %v", f, n, err)
	}
	// Every prefix of a frame is "not yet": nothing taken, no error.
	long := clientFrame(0x1, true, bytes.Repeat([]byte("x"), 300))
	for i := range len(long) {
		if _, n, err := wire.NextFrame(bytes.Clone(long[:i]), false, 1024); n != 0 || err != nil {
			t.Fatalf("prefix of %d bytes: %d, %v", i, n, err)
		}
	}
	if f, n, err := wire.NextFrame(bytes.Clone(long), false, 1024); err != nil || n != len(long) || len(f.Payload) != 300 {
		t.Fatalf("300-byte frame: %d %v", n, err)
	}
	for _, tt := range []struct {
		name       string
		b          []byte
		fragmented bool
		err        error
	}{
		{"unmasked", []byte{0x81, 0x01, 'x'}, false, ws.ErrProtocolMaskRequired},
		{"reserved bits", append([]byte{0xc1}, clientFrame(0x1, true, nil)[1:]...), false, ws.ErrProtocolNonZeroRsv},
		{"reserved opcode", clientFrame(0x3, true, nil), false, ws.ErrProtocolOpCodeReserved},
		{"fragmented ping", clientFrame(0x9, false, nil), false, ws.ErrProtocolControlNotFinal},
		{"long ping", clientFrame(0x9, true, make([]byte, 126)), false, ws.ErrProtocolControlPayloadOverflow},
		{"stray continuation", clientFrame(0x0, true, nil), false, ws.ErrProtocolContinuationUnexpected},
		{"text inside a fragmented message", clientFrame(0x1, true, nil), true, ws.ErrProtocolContinuationExpected},
		{"over the limit", clientFrame(0x1, true, make([]byte, 1025)), false, wire.ErrFrameTooBig},
		{"huge length", []byte{0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}, false, wire.ErrFrameTooBig},
	} {
		if _, _, err := wire.NextFrame(tt.b, tt.fragmented, 1024); !errors.Is(err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.err)
		}
	}
	if f, n, err := wire.NextFrame(clientFrame(0x0, true, []byte("end")), true, 1024); err != nil || n == 0 || f.Op != ws.OpContinuation || string(f.Payload) != "end" {
		t.Errorf("continuation: %+v %d %v", f, n, err)
	}
}

// FuzzNextFrame: no input panics; what is taken is within the input and a
// frame within the limit.
func FuzzNextFrame(f *testing.F) {
	f.Add(clientFrame(0x1, true, []byte("hello")), false)
	f.Add(clientFrame(0x8, true, []byte{3, 232}), false)
	f.Add(clientFrame(0x0, false, []byte("mid")), true)
	f.Add([]byte{0x81, 0xfe, 0xff}, false)
	f.Fuzz(func(t *testing.T, b []byte, fragmented bool) {
		fr, n, err := wire.NextFrame(bytes.Clone(b), fragmented, 1024)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with %d bytes taken", err, n)
			}
			return
		}
		if n > len(b) || len(fr.Payload) > 1024 || n != 0 && n < 6+len(fr.Payload) {
			t.Fatalf("took %d of %d bytes, payload %d", n, len(b), len(fr.Payload))
		}
	})
}
