// Package streaming is berthd's streaming server: the HTTP endpoint that
// the URLs of the CRI Exec, Attach and PortForward RPCs point at. It is
// k8s.io/cri-streaming (the kubelet's CRI streaming server, which CRI-O and
// containerd use too) for the protocols (SPDY remotecommand v1-v4 and
// port-forward, WebSocket channel.k8s.io v1 and v4) and its single-use,
// expiring tokens, plus Berth's side of it:
//
//   - runtime.go: exec and attach through the oci package (a monitor exec
//     session streamed from its first byte; the container monitor's attach
//     socket);
//   - portforward.go: port-forward dialled from berthd inside the pod's
//     pinned network namespace, on a locked OS thread;
//   - conn.go: a client that hangs up cancels its session's context, so an
//     abandoned exec is killed (the library hands the runtime the request
//     context, which net/http never cancels once a connection is hijacked);
//   - server.go, tls.go: listening, the URL base, optional TLS and client
//     certificates, shutdown.
package streaming
