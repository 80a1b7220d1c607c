// Package monitor is berth-monitor, the process that supervises one
// container (or one exec session) for berthd: it runs the OCI runtime's
// create, exec or restore, is the subreaper and parent of what the runtime
// starts, owns its stdio and writes the CRI log, serves the attach and
// control sockets (exec, signals, log reopen), counts OOM kills and writes
// the exit file that tells berthd, running or restarted, how it ended.
// cmd/berth-monitor is its main; berthd drives it through package
// monitorclient, over the wire formats defined here (wire.go,
// protocol.go, exitfile.go).
//
// One runs per container, so the package links only the standard
// library's small packages and golang.org/x/sys (monitorclient's
// TestMonitorImportsNoHeavyPackages checks it): no fmt, log, flag, net,
// encoding/json, os/exec, context or bufio.
package monitor
