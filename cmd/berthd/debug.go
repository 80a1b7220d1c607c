package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/sirupsen/logrus"
)

// serveDebug serves Go's profiles (net/http/pprof) on the unix socket at
// path, root's only (0600), as containerd's debug socket does: CPU, heap,
// goroutine and mutex profiles of a running berthd, for an operator to
// see where its time and memory go on a busy node
// (`curl --unix-socket PATH http://berthd/debug/pprof/profile?seconds=30`).
// Off unless configured: a profile costs CPU while it runs, and the
// endpoints show the daemon's internals.
func serveDebug(path string) (stop func(), err error) {
	// Only a socket is replaced: the path is the operator's, and a
	// typo must not remove a file.
	if st, err := os.Lstat(path); err == nil && st.Mode().Type() != fs.ModeSocket {
		return nil, fmt.Errorf("debug socket %s: a file that is not a socket is there", path)
	}
	ln, err := listenUnix(path)
	if err != nil {
		return nil, fmt.Errorf("debug socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logrus.Warnf("debug socket %s: %v", path, err)
		}
	}()
	logrus.Infof("profiles on unix://%s (/debug/pprof/)", path)
	return func() {
		hs.Close()
		os.Remove(path)
	}, nil
}
