package main

import (
	"flag"
	"fmt"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func init() {
	register(&command{name: "checkpoint", usage: "-o FILE ID",
		summary: "write a checkpoint archive of a running container, which keeps running (CheckpointContainer)", run: runCheckpoint})
}

func runCheckpoint(c *cli, args []string) error {
	fs := flag.NewFlagSet("checkpoint", flag.ContinueOnError)
	out := fs.String("o", "", "the archive to write, on the node (a relative path is made absolute here)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 1 {
		return fmt.Errorf("want -o FILE and one container ID")
	}
	// berthd wants an absolute path; berthctl runs on the node, so a
	// relative one means the caller's working directory.
	loc, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	id := fs.Arg(0)
	ctx, cancel := c.ctx()
	defer cancel()
	// The request's timeout bounds the checkpoint in berthd too, so that
	// it does not go on after berthctl gave up.
	_, err = c.rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{
		ContainerId: id, Location: loc, Timeout: int64(c.timeout.Seconds())})
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	fmt.Println("Checkpointed", id, "to", loc)
	return nil
}
