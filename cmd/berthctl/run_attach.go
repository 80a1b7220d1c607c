package main

import (
	"context"
	"fmt"
	"os"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// attachStreamer is run's -i: the container was created with stdin (and
// stdin_once, so its input ends with ours), and the CRI Attach RPC joins
// it once started. Attach needs a running container, so it joins after
// StartContainer and sees only output from then on:
//
//   - without -t, attach carries stdin alone and the output comes from
//     the CRI log as without -i, so none of it is lost. A container that
//     reads stdin blocks until attach delivers it, so nothing is lost on
//     the way in either.
//   - with -t, attach carries the terminal both ways (raw mode, window
//     resizes), as `berthctl attach -i -t` does: a terminal is read
//     keystroke by keystroke and must echo at once, which a followed log
//     cannot do. What the container wrote before attach joined (a shell's
//     first prompt, say) is in its log, not on the screen.
type attachStreamer struct{ tty bool }

func (a attachStreamer) stream(c *cli, id string) error {
	if a.tty {
		return a.streamTerminal(c, id)
	}
	return a.streamStdin(c, id)
}

// streamStdin sends stdin through attach while the log is followed.
func (attachStreamer) streamStdin(c *cli, id string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		err := attach(ctx, c, id, false)
		if err != nil && ctx.Err() == nil && stillRunning(c, id) {
			fmt.Fprintf(os.Stderr, "berthctl run: attach %s: %v (stdin is not connected; Ctrl-C stops the container)\n",
				truncID(id), err)
		}
	}()
	// Once the container has exited its stdin has nowhere to go: the
	// attach ends with the log, even while it waits on our stdin.
	return logFollower{}.stream(c, id)
}

// streamTerminal attaches the terminal until the container's output ends,
// then waits for the container to be recorded as exited.
func (attachStreamer) streamTerminal(c *cli, id string) error {
	err := attach(context.Background(), c, id, true)
	if err != nil && !stillRunning(c, id) {
		// It ended before attach joined: its log has all it wrote.
		return logFollower{}.stream(c, id)
	}
	if err != nil {
		return err
	}
	return waitExited(c, id)
}

// attach joins the container's stdin, and with tty its terminal output.
func attach(ctx context.Context, c *cli, id string, tty bool) error {
	rctx, cancel := c.ctx()
	resp, err := c.rt.Attach(rctx, &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: tty, Tty: tty})
	cancel()
	if err != nil {
		return err
	}
	return streamStdio(ctx, resp.Url, true, tty, tty)
}

// stillRunning says whether the container runs; an error reading its
// status counts as running, so that attach's error is not hidden.
func stillRunning(c *cli, id string) bool {
	st, err := c.containerStatus(id)
	return err != nil || st.State == runtimeapi.ContainerState_CONTAINER_RUNNING
}

// waitExited returns once the container is no longer running: attach
// ends when the container's output does, a moment before the monitor
// records its exit code.
func waitExited(c *cli, id string) error {
	for {
		st, err := c.containerStatus(id)
		if err != nil {
			return err
		}
		if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			return nil
		}
		time.Sleep(followInterval / 4)
	}
}
