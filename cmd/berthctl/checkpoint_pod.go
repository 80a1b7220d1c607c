package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func init() {
	register(&command{name: "checkpoint-pod", usage: "-o DIR POD-ID [CONTAINER-ID...]",
		summary: "write a checkpoint of a pod's running containers (all unless named) into an empty directory; they keep running (CheckpointPod)", run: runCheckpointPod})
	register(&command{name: "restore-pod", usage: "[-r HANDLER] [-start=false] DIR POD-CONFIG CONTAINER-CONFIG...",
		summary: "make a new pod from a pod checkpoint, configs as JSON or YAML, and start its containers (RestorePod)", run: runRestorePod})
	register(&command{name: "restore", usage: "[-start=false] ARCHIVE POD-ID CONTAINER-CONFIG",
		summary: "make a container restored from a checkpoint archive in a pod, and start it (CreateContainer from the archive)", run: runRestore})
}

func runCheckpointPod(c *cli, args []string) error {
	fs := flag.NewFlagSet("checkpoint-pod", flag.ContinueOnError)
	out := fs.String("o", "", "the directory to write, on the node: empty, or made if missing (a relative path is made absolute here)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() < 1 {
		return fmt.Errorf("want -o DIR, a pod ID and optionally container IDs")
	}
	dir, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	pod, ids := fs.Arg(0), fs.Args()[1:]
	ctx, cancel := c.ctx()
	defer cancel()
	if len(ids) == 0 {
		// The CRI wants the containers named: all the pod's running ones.
		resp, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
			PodSandboxId: pod, State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
		if err != nil {
			return err
		}
		for _, ctr := range resp.Containers {
			ids = append(ids, ctr.Id)
		}
		if len(ids) == 0 {
			return fmt.Errorf("pod %s has no running container", pod)
		}
	}
	if _, err := c.rt.CheckpointPod(ctx, &runtimeapi.CheckpointPodRequest{PodSandboxId: pod, OutputPath: dir, ContainerIds: ids}); err != nil {
		return fmt.Errorf("%s: %w", pod, err)
	}
	fmt.Printf("Checkpointed %d containers of pod %s to %s\n", len(ids), pod, dir)
	return nil
}

func runRestorePod(c *cli, args []string) error {
	fs := flag.NewFlagSet("restore-pod", flag.ContinueOnError)
	handler := fs.String("r", "", "runtime handler (the checkpointed pod's); empty for the default")
	start := fs.Bool("start", true, "start the restored containers (false leaves them CREATED)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 3 {
		return fmt.Errorf("want DIR, a PodSandboxConfig file and a ContainerConfig file per container")
	}
	dir, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	pod := &runtimeapi.PodSandboxConfig{}
	if err := loadMessage(fs.Arg(1), pod); err != nil {
		return err
	}
	var cfgs []*runtimeapi.ContainerConfig
	for _, f := range fs.Args()[2:] {
		cfg := &runtimeapi.ContainerConfig{}
		if err := loadMessage(f, cfg); err != nil {
			return err
		}
		cfgs = append(cfgs, cfg)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.rt.RestorePod(ctx, &runtimeapi.RestorePodRequest{
		CheckpointPath: dir, Config: pod, RuntimeHandler: *handler, ContainerConfigs: cfgs})
	if err != nil {
		return err
	}
	rows := [][]string{}
	for _, rc := range resp.RestoredContainers {
		if *start {
			if _, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: rc.ContainerId}); err != nil {
				return fmt.Errorf("start %s (%s) of pod %s: %w", rc.Name, rc.ContainerId, resp.PodSandboxId, err)
			}
		}
		rows = append(rows, []string{resp.PodSandboxId, rc.Name, rc.ContainerId})
	}
	return c.print(resp, []string{"POD ID", "NAME", "CONTAINER ID"}, rows)
}

func runRestore(c *cli, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	start := fs.Bool("start", true, "start the restored container (false leaves it CREATED)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 3 {
		return fmt.Errorf("want ARCHIVE, a pod ID and a ContainerConfig file")
	}
	archive, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	cfg := &runtimeapi.ContainerConfig{}
	if err := loadMessage(fs.Arg(2), cfg); err != nil {
		return err
	}
	// An image that is an archive's absolute path is a restore.
	cfg.Image = &runtimeapi.ImageSpec{Image: archive}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: fs.Arg(1), Config: cfg})
	if err != nil {
		return err
	}
	if *start {
		if _, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
			return fmt.Errorf("start %s: %w", resp.ContainerId, err)
		}
	}
	return c.print(resp, []string{"CONTAINER ID"}, [][]string{{resp.ContainerId}})
}
