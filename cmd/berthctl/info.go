package main

import (
	"fmt"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func init() {
	register(&command{name: "version", summary: "show the runtime's name and version", run: runVersion})
	register(&command{name: "info", summary: "show the runtime's status and conditions", run: runInfo})
}

func runVersion(c *cli, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("takes no arguments")
	}
	ctx, cancel := c.ctx()
	defer cancel()
	v, err := c.rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return err
	}
	return c.print(v, []string{"RUNTIME", "VERSION", "API"},
		[][]string{{v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion}})
}

func runInfo(c *cli, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("takes no arguments")
	}
	ctx, cancel := c.ctx()
	defer cancel()
	st, err := c.rt.Status(ctx, &runtimeapi.StatusRequest{Verbose: c.output != "table"})
	if err != nil {
		return err
	}
	var rows [][]string
	for _, cond := range st.GetStatus().GetConditions() {
		rows = append(rows, []string{cond.Type, fmt.Sprint(cond.Status), cond.Reason, cond.Message})
	}
	var handlers []string
	for _, h := range st.GetRuntimeHandlers() {
		if h.Name != "" {
			handlers = append(handlers, h.Name)
		}
	}
	rows = append(rows, []string{"RuntimeHandlers", strings.Join(handlers, ","), "", ""})
	// The driver kubelet is told to use; Status's verbose info says why.
	rc, err := c.rt.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		return err
	}
	rows = append(rows, []string{"CgroupDriver", strings.ToLower(rc.GetLinux().GetCgroupDriver().String()), "", st.GetInfo()["cgroup"]})
	return c.print(st, []string{"CONDITION", "STATUS", "REASON", "MESSAGE"}, rows)
}
