package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func init() {
	register(&command{name: "events", summary: "follow container and pod events (GetContainerEvents) until interrupted", run: runEvents})
}

// runEvents prints each event as it comes: a line in a table, or one JSON
// object per line with -o json. It ends on SIGINT/SIGTERM (not on
// --timeout: following is open-ended) or when the runtime ends the stream.
func runEvents(c *cli, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("takes no arguments")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stream, err := c.rt.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		return err
	}
	// The runtime sends its headers once it has subscribed us: from
	// here on no event is missed, which scripts (and tests) wait for.
	if _, err := stream.Header(); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "following events; Ctrl-C to stop")
	if c.output == "table" {
		fmt.Printf("%-30s  %-8s  %-13s  %-30s  %s\n", "TIME", "EVENT", "ID", "POD", "STATE")
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if c.output != "table" {
			b, err := marshalJSON(ev)
			if err != nil {
				return err
			}
			// One object per line, so the output can be piped to jq.
			var line bytes.Buffer
			if err := json.Compact(&line, b); err != nil {
				return err
			}
			fmt.Println(line.String())
			continue
		}
		md := ev.GetPodSandboxStatus().GetMetadata()
		fmt.Printf("%-30s  %-8s  %-13s  %-30s  %s\n",
			time.Unix(0, ev.CreatedAt).UTC().Format(time.RFC3339Nano),
			strings.TrimSuffix(strings.TrimPrefix(ev.ContainerEventType.String(), "CONTAINER_"), "_EVENT"),
			truncID(ev.ContainerId), md.GetNamespace()+"/"+md.GetName(), eventState(ev))
	}
}

// eventState is the state the event's subject was left in.
func eventState(ev *runtimeapi.ContainerEventResponse) string {
	if ev.GetPodSandboxStatus().GetId() == ev.ContainerId {
		return strings.TrimPrefix(ev.PodSandboxStatus.State.String(), "SANDBOX_")
	}
	for _, cs := range ev.ContainersStatuses {
		if cs.Id == ev.ContainerId {
			s := strings.TrimPrefix(cs.State.String(), "CONTAINER_")
			if cs.State == runtimeapi.ContainerState_CONTAINER_EXITED {
				s += fmt.Sprintf(" (%d %s)", cs.ExitCode, cs.Reason)
			}
			return s
		}
	}
	return "GONE"
}
