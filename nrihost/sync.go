package nrihost

import (
	"context"
	"fmt"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
)

// synchronize hands a plugin that just connected every pod and container
// there is, then applies the updates it asks for. RunPodSandbox and
// CreateContainer hold BlockSync, so none is half made while this runs.
func (h *Host) synchronize(ctx context.Context, cb adaptation.SyncCB) error {
	if !h.started.Load() {
		return fmt.Errorf("NRI: synchronize before berthd's pods and containers are known")
	}
	var pods []*api.PodSandbox
	for _, sb := range h.pods.List() {
		pods = append(pods, h.podSandbox(sb))
	}
	var ctrs []*api.Container
	for _, c := range h.ctrs.All() {
		rec := c.Record()
		if rec.Infra {
			continue
		}
		ctrs = append(ctrs, h.container(rec, h.spec(c, rec)))
	}
	updates, err := cb(ctx, pods, ctrs)
	if err != nil {
		return err
	}
	h.applyUpdates(ctx, updates, "Synchronize")
	return nil
}
