package monitor

// The wire between berthd (package monitorclient) and the monitor. All sockets
// are SOCK_SEQPACKET unix sockets, so every message keeps its boundaries
// and no framing is needed (conmon uses the same kind of socket for
// attach).

// SyncFD is the monitor's end of the sync pipe (the first ExtraFiles
// entry), named to the monitor in SyncFDEnv.
const SyncFD = 3

// AttachFD is the monitor's end of an exec client's connection
// (Config.AttachFD): the second of the extra files, after the sync pipe.
const AttachFD = SyncFD + 1

// SyncFDEnv names the environment variable that tells berth-monitor which
// fd to report on. Without it the monitor reports on stdout.
const SyncFDEnv = "BERTH_MONITOR_SYNC_FD"

// CallerGOMAXPROCSEnv carries the caller's GOMAXPROCS past the monitor,
// which runs with GOMAXPROCS=1, to the OCI runtime (see RuntimeEnv).
const CallerGOMAXPROCSEnv = "BERTH_MONITOR_CALLER_GOMAXPROCS"

// Control socket requests; the reply is "ok[ detail]" or "error: message".
const (
	CtlReopenLog = "reopen-log"
	CtlPing      = "ping"
	// CtlSignal + " N" sends signal N to the container's init, the
	// monitor's child: "ok", or "error: exited" once it was reaped.
	CtlSignal = "signal"
	// The exec request (CtlExec) and its replies: see exec_in.go.
)

// CtlExited is the error of a signal for an init already reaped.
const CtlExited = "exited"

// Attach socket packets. The first byte says what the packet is.
const (
	// client -> monitor
	AttachStdin      byte = 0 // data for the container's stdin
	AttachStdinClose byte = 1 // the client's stdin reached EOF
	AttachResize     byte = 2 // 4 bytes: width, height, big endian uint16
	// monitor -> client (same ids as conmon's)
	AttachStdout byte = 1
	AttachStderr byte = 2
)

// MaxPacket bounds one attach packet's payload. A seqpacket message must fit
// the socket buffer whole; 32 KiB always does.
const MaxPacket = 32 * 1024
