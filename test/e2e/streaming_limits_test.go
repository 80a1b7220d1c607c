package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// streamHost is the streaming server's host:port, from an exec URL.
func (e *ctrEnv) streamHost(t *testing.T) string {
	t.Helper()
	pod := e.pod(t, statsHandler(t), runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(t, pod, e.config("target", "sleep", "3600"))
	u, err := url.Parse(e.execURL(t, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true}))
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// badTokenRequest sends one request with a token berthd never gave and
// reads its answer; the connection stays open (keep-alive).
func badTokenRequest(c net.Conn) error {
	if _, err := c.Write([]byte("GET /exec/not-a-token HTTP/1.1\r\nHost: berth\r\n\r\n")); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("answer to a bad token: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		return fmt.Errorf("a bad token got %s", resp.Status)
	}
	return nil
}

// closedByServer waits up to limit for the server to close c.
func closedByServer(c net.Conn, limit time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(limit))
	var b [1]byte
	_, err := c.Read(b[:])
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// Connections that never become a session are not kept (issue 23): 200
// connections with one bad-token request each are all closed by the
// server once stream.request_timeout (30 s by default) passes with no
// next request. Round 1 kept them forever.
func TestStreamingClosesIdleUnauthenticatedConnections(t *testing.T) {
	e := startContainerEnv(t)
	host := e.streamHost(t)
	conns := make([]net.Conn, 200)
	for i := range conns {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := badTokenRequest(c); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	open := 0
	deadline := time.Now().Add(90 * time.Second)
	for _, c := range conns {
		if !closedByServer(c, time.Until(deadline)) {
			open++
		}
	}
	if open > 0 {
		t.Errorf("%d of %d idle unauthenticated connections still open 90 s after their last request", open, len(conns))
	}
}

// No more than stream.max_connections connections are served at once: a
// request on the next one waits until one of them closes.
func TestStreamingConnectionCap(t *testing.T) {
	e := startContainerEnvWith(t, "\n[stream]\nmax_connections = 10\n")
	host := e.streamHost(t)
	held := make([]net.Conn, 10)
	for i := range held {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held[i] = c
	}
	next, err := net.Dial("tcp", host) // the kernel accepts; berthd does not yet
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	answered := make(chan error, 1)
	go func() { answered <- badTokenRequest(next) }()
	select {
	case <-answered:
		t.Fatal("a connection beyond max_connections was served while 10 were open")
	case <-time.After(2 * time.Second):
	}
	held[0].Close()
	select {
	case err := <-answered:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the waiting connection was not served after one of the 10 closed")
	}
}
