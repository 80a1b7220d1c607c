package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/oci"
)

// ListContainers lists containers, filtered by id (or id prefix), state,
// pod (or pod id prefix) and labels.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	recs := s.selectContainers(req.GetFilter())
	out := make([]*runtimeapi.Container, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		out = append(out, &runtimeapi.Container{
			Id:           r.ID,
			PodSandboxId: r.PodID,
			Metadata:     &runtimeapi.ContainerMetadata{Name: r.Name, Attempt: r.Attempt},
			Image:        &runtimeapi.ImageSpec{Image: r.Image},
			ImageRef:     r.ImageRef,
			ImageId:      r.ImageID,
			State:        r.State.CRI(),
			CreatedAt:    r.CreatedAt.UnixNano(),
			Labels:       r.Labels,
			Annotations:  r.Annotations,
		})
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// ContainerStatus reports a container's state, times, exit, image,
// mounts, log path, resources and user; verbose adds its pid and OCI spec.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	if req.GetContainerId() == "" {
		return nil, errdefs.Invalidf("container_id is empty")
	}
	c, err := s.ctr.get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	r := c.Record()
	resp := &runtimeapi.ContainerStatusResponse{Status: containerStatus(&r, c.ProcessUser())}
	if req.GetVerbose() {
		info, err := containerInfo(c, &r)
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": info}
	}
	return resp, nil
}

// containerStatus is a container's record as the CRI reports it, with
// user the identity its process has (see oci.Container.ProcessUser).
func containerStatus(r *oci.Record, user oci.User) *runtimeapi.ContainerStatus {
	st := &runtimeapi.ContainerStatus{
		Id:          r.ID,
		Metadata:    &runtimeapi.ContainerMetadata{Name: r.Name, Attempt: r.Attempt},
		State:       r.State.CRI(),
		CreatedAt:   r.CreatedAt.UnixNano(),
		Image:       &runtimeapi.ImageSpec{Image: r.Image},
		ImageRef:    r.ImageRef,
		ImageId:     r.ImageID,
		Labels:      r.Labels,
		Annotations: r.Annotations,
		LogPath:     r.LogPath,
		StopSignal:  criSignal(r.StopSignal),
		User: &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
			Uid: int64(user.UID), Gid: int64(user.GID), SupplementalGroups: groups(user.Groups),
		}},
	}
	if !r.StartedAt.IsZero() {
		st.StartedAt = r.StartedAt.UnixNano()
	}
	if r.State == oci.StateExited {
		st.FinishedAt = r.FinishedAt.UnixNano()
		st.ExitCode = r.ExitCode
		st.Reason = r.Reason
		st.Message = r.Message
	}
	if r.Resources != nil {
		st.Resources = &runtimeapi.ContainerResources{Linux: r.Resources}
	}
	for _, m := range r.Mounts {
		cm := &runtimeapi.Mount{
			ContainerPath:  m.ContainerPath,
			HostPath:       m.HostPath,
			Readonly:       m.Readonly,
			SelinuxRelabel: m.SelinuxRelabel,
			Propagation:    runtimeapi.MountPropagation(m.Propagation),
		}
		if m.Image != "" {
			cm.HostPath = ""
			cm.Image = &runtimeapi.ImageSpec{Image: m.Image, ImageRef: m.ImageRef}
		}
		st.Mounts = append(st.Mounts, cm)
	}
	return st
}

// containerInfo is the "info" JSON crictl inspect shows, in containerd's
// shape: pid, sandbox, runtime and the OCI spec.
func containerInfo(c *oci.Container, r *oci.Record) (string, error) {
	spec, err := c.Spec()
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(struct {
		SandboxID      string          `json:"sandboxID"`
		Pid            int             `json:"pid"`
		MonitorPid     int             `json:"monitorPid"`
		RuntimeHandler string          `json:"runtimeHandler"`
		RuntimePath    string          `json:"runtimePath"`
		RuntimeSpec    json.RawMessage `json:"runtimeSpec"`
	}{r.PodID, r.PID, r.MonitorPID, r.Runtime.Handler, r.Runtime.Path, spec})
	if err != nil {
		return "", fmt.Errorf("encode status info: %w", err)
	}
	return string(b), nil
}

// criSignal maps "SIGTERM" to the CRI's SIGNAL_SIGTERM.
func criSignal(name string) runtimeapi.Signal {
	name = strings.ToUpper(name)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	return runtimeapi.Signal(runtimeapi.Signal_value["SIGNAL_"+name])
}

func groups(gids []uint32) []int64 {
	out := make([]int64, len(gids))
	for i, g := range gids {
		out[i] = int64(g)
	}
	return out
}
