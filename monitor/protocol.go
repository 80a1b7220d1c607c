package monitor

// The wire between berthd and the monitor. All sockets are SOCK_SEQPACKET
// unix sockets, so every message keeps its boundaries and no framing is
// needed (conmon uses the same kind of socket for attach).

// syncMessage is the one JSON object the monitor writes on fd 3 once the
// runtime has created the container, or failed to.
type syncMessage struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// syncFD is the monitor's end of the sync pipe (the first ExtraFiles entry),
// named to the monitor in SyncFDEnv.
const syncFD = 3

// SyncFDEnv names the environment variable that tells berth-monitor which
// fd to report on. Without it the monitor reports on stdout.
const SyncFDEnv = "BERTH_MONITOR_SYNC_FD"

// callerGOMAXPROCSEnv carries the caller's GOMAXPROCS past the monitor,
// which runs with GOMAXPROCS=1, to the OCI runtime (see monitorEnv).
const callerGOMAXPROCSEnv = "BERTH_MONITOR_CALLER_GOMAXPROCS"

// Control socket requests; the reply is "ok[ detail]" or "error: message".
const (
	ctlReopenLog = "reopen-log"
	ctlPing      = "ping"
)

// Attach socket packets. The first byte says what the packet is.
const (
	// client -> monitor
	attachStdin      byte = 0 // data for the container's stdin
	attachStdinClose byte = 1 // the client's stdin reached EOF
	attachResize     byte = 2 // 4 bytes: width, height, big endian uint16
	// monitor -> client (same ids as conmon's)
	attachStdout byte = 1
	attachStderr byte = 2
)

// maxPacket bounds one attach packet's payload. A seqpacket message must fit
// the socket buffer whole; 32 KiB always does.
const maxPacket = 32 * 1024
