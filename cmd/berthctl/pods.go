package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func init() {
	register(&command{name: "runp", usage: "[-r HANDLER] FILE", summary: "run a pod sandbox from a PodSandboxConfig (JSON or YAML; - for stdin)", run: runRunp})
	register(&command{name: "pods", usage: "[-state ready|notready] [-label K=V]... [ID]", summary: "list pod sandboxes", run: runPods})
	register(&command{name: "inspectp", usage: "ID...", summary: "show pod sandbox status, verbose", run: runInspectp})
	register(&command{name: "stopp", usage: "ID...", summary: "stop pod sandboxes", run: runStopp})
	register(&command{name: "rmp", usage: "ID...", summary: "remove pod sandboxes", run: runRmp})
}

func runRunp(c *cli, args []string) error {
	fs := flag.NewFlagSet("runp", flag.ContinueOnError)
	handler := fs.String("r", "", "runtime handler (RuntimeClass); empty for the default")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("want one config file (JSON or YAML PodSandboxConfig, - for stdin)")
	}
	cfg := &runtimeapi.PodSandboxConfig{}
	if err := loadMessage(fs.Arg(0), cfg); err != nil {
		return err
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: *handler})
	if err != nil {
		return err
	}
	return c.print(resp, []string{"POD ID"}, [][]string{{resp.PodSandboxId}})
}

// labelFlags collects repeated -label K=V.
type labelFlags map[string]string

func (l labelFlags) String() string { return fmt.Sprint(map[string]string(l)) }
func (l labelFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	l[k] = val
	return nil
}

func runPods(c *cli, args []string) error {
	fs := flag.NewFlagSet("pods", flag.ContinueOnError)
	state := fs.String("state", "", "only pods in this state: ready or notready")
	labels := labelFlags{}
	fs.Var(labels, "label", "only pods with this label KEY=VALUE (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("takes at most one ID (or ID prefix)")
	}
	filter := &runtimeapi.PodSandboxFilter{Id: fs.Arg(0), LabelSelector: labels}
	switch strings.ToLower(*state) {
	case "":
	case "ready":
		filter.State = &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}
	case "notready":
		filter.State = &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}
	default:
		return fmt.Errorf("-state %q: want ready or notready", *state)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: filter})
	if err != nil {
		return err
	}
	rows := make([][]string, 0, len(resp.Items))
	for _, p := range resp.Items {
		rows = append(rows, []string{
			truncID(p.Id), p.GetMetadata().GetName(), p.GetMetadata().GetNamespace(),
			fmt.Sprint(p.GetMetadata().GetAttempt()), podStateName(p.State),
			time.Unix(0, p.CreatedAt).Format(time.RFC3339), p.RuntimeHandler,
		})
	}
	return c.print(resp, []string{"POD ID", "NAME", "NAMESPACE", "ATTEMPT", "STATE", "CREATED", "RUNTIME"}, rows)
}

func podStateName(s runtimeapi.PodSandboxState) string {
	if s == runtimeapi.PodSandboxState_SANDBOX_READY {
		return "Ready"
	}
	return "NotReady"
}

func runInspectp(c *cli, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("want at least one pod ID")
	}
	for _, id := range args {
		ctx, cancel := c.ctx()
		resp, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if c.output != "table" {
			if err := c.print(resp, nil, nil); err != nil {
				return err
			}
			continue
		}
		st := resp.Status
		ips := []string{st.GetNetwork().GetIp()}
		for _, ip := range st.GetNetwork().GetAdditionalIps() {
			ips = append(ips, ip.Ip)
		}
		rows := [][]string{
			{"ID", st.Id},
			{"Name", st.GetMetadata().GetNamespace() + "/" + st.GetMetadata().GetName()},
			{"UID", st.GetMetadata().GetUid()},
			{"State", podStateName(st.State)},
			{"Created", time.Unix(0, st.CreatedAt).Format(time.RFC3339)},
			{"IPs", strings.Trim(strings.Join(ips, ","), ",")},
			{"Runtime", st.RuntimeHandler},
		}
		var info map[string]any
		if json.Unmarshal([]byte(resp.Info["info"]), &info) == nil {
			if ns, ok := info["namespaces"].(map[string]any); ok {
				for _, k := range []string{"network", "ipc", "uts", "pid"} {
					if v, ok := ns[k]; ok {
						rows = append(rows, []string{"Namespace " + k, fmt.Sprint(v)})
					}
				}
			}
			for _, k := range []string{"cgroupParent", "resolvConfPath", "hostsPath", "shmPath"} {
				if v, ok := info[k]; ok {
					rows = append(rows, []string{k, fmt.Sprint(v)})
				}
			}
		}
		if err := c.print(resp, []string{"FIELD", "VALUE"}, rows); err != nil {
			return err
		}
	}
	return nil
}

func runStopp(c *cli, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("want at least one pod ID")
	}
	for _, id := range args {
		ctx, cancel := c.ctx()
		_, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		fmt.Println("Stopped", id)
	}
	return nil
}

func runRmp(c *cli, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("want at least one pod ID")
	}
	for _, id := range args {
		ctx, cancel := c.ctx()
		_, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		fmt.Println("Removed", id)
	}
	return nil
}
