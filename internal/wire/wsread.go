package wire

// Client frames of the WebSocket transport, parsed from bytes already
// read, so that a connection is read only when epoll says there is
// something to read and keeps no reader while idle. The frame headers are
// read and checked by github.com/gobwas/ws, made for this: parsing from
// any reader, without a goroutine or buffers of its own.

import (
	"bytes"
	"errors"
	"io"

	"github.com/gobwas/ws"
)

// ClientFrame is one frame a client sent.
type ClientFrame struct {
	Op      ws.OpCode
	Fin     bool
	Payload []byte // unmasked; a slice of the bytes given to NextFrame
}

// ErrFrameTooBig means a frame's payload is over the limit: the
// connection is closed with 1009. NextFrame's other errors break the
// protocol (1002).
var ErrFrameTooBig = errors.New("frame too big")

// NextFrame parses one whole client frame from the front of b. The header
// is checked as a server must (RFC 6455, section 5): masked, no reserved
// bits or opcodes, control frames final and at most 125 bytes, a
// continuation only inside a fragmented message, which fragmented says is
// in progress; a payload over limit is ErrFrameTooBig. The payload is
// unmasked in place. n is the number of bytes the frame took, 0 (with a
// nil error) when b does not hold a whole frame yet.
func NextFrame(b []byte, fragmented bool, limit int) (f ClientFrame, n int, err error) {
	if len(b) < 2 {
		return f, 0, nil
	}
	r := bytes.NewReader(b)
	h, err := ws.ReadHeader(r)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return f, 0, nil
	}
	if err != nil {
		return f, 0, err
	}
	state := ws.StateServerSide
	if fragmented {
		state |= ws.StateFragmented
	}
	if err := ws.CheckHeader(h, state); err != nil {
		return f, 0, err
	}
	if h.Length > int64(limit) {
		return f, 0, ErrFrameTooBig
	}
	hl := len(b) - r.Len()
	end := hl + int(h.Length)
	if end > len(b) {
		return f, 0, nil
	}
	f = ClientFrame{Op: h.OpCode, Fin: h.Fin, Payload: b[hl:end]}
	ws.Cipher(f.Payload, h.Mask, 0)
	return f, end, nil
}
