package streaming

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
)

// Once the library upgrades a request (SPDY or WebSocket) it hijacks the
// connection, and net/http no longer watches it: the request context the
// library passes to Exec and Attach would then only end when the whole
// session does. Both protocols keep reading the connection for frames, so
// a read error is the client hanging up; the watcher below turns it into
// the end of the session's context. Written here because neither the
// library nor net/http offers it.

// hijackWatcher wraps the ResponseWriter the library hijacks. It has no
// Unwrap method on purpose: the library's WebSocket path unwraps writers
// to the original, which would bypass the watcher.
type hijackWatcher struct {
	http.ResponseWriter
	ctx    context.Context
	cancel func()
	s      *Server
}

func (h *hijackWatcher) Flush() {
	if f, ok := h.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (h *hijackWatcher) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("stream server: connection cannot be hijacked")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	wc := &watchedConn{Conn: c, r: brw.Reader, ctx: h.ctx, cancel: h.cancel, s: h.s}
	if !h.s.track(wc) {
		c.Close()
		h.cancel()
		return nil, nil, errors.New("stream server: shutting down")
	}
	return wc, bufio.NewReadWriter(bufio.NewReader(wc), brw.Writer), nil
}

// watchedConn reads through the hijacked reader (which may hold bytes the
// server already buffered) and ends the session's context on a read error
// or close.
type watchedConn struct {
	net.Conn
	r      *bufio.Reader
	ctx    context.Context
	cancel func()
	s      *Server
	once   sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		c.gone()
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.gone()
	return c.Conn.Close()
}

func (c *watchedConn) gone() {
	c.once.Do(func() {
		c.cancel()
		c.s.untrack(c)
	})
}
