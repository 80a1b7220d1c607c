package server

import (
	"context"

	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/storage"
)

// rootfsStore is the image store in oci's terms: oci makes, mounts and
// removes containers' root filesystems through it. Only the types differ.
type rootfsStore struct{ *storage.Store }

func (r rootfsStore) CreateRootfs(ctx context.Context, id, name, image string, userNS *oci.UserNS) (*oci.RootfsImage, error) {
	var opts []storage.RootfsOption
	if userNS != nil {
		// idmapped layers with the pod's mappings
		opts = append(opts, storage.WithIDMappings(storageIDMaps(userNS.UIDs), storageIDMaps(userNS.GIDs)))
	}
	rfs, err := r.CreateContainerRootfs(ctx, id, name, image, opts...)
	if err != nil {
		return nil, err
	}
	c := rfs.Config
	return &oci.RootfsImage{
		Config: oci.ImageConfig{
			Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env,
			User: c.User, WorkingDir: c.WorkingDir, StopSignal: c.StopSignal,
		},
		Name: rfs.ImageName, Ref: rfs.ImageRef, ID: rfs.ImageID,
	}, nil
}

// CreateImageVolume shadows the store's own, which answers in its types.
func (r rootfsStore) CreateImageVolume(ctx context.Context, id string, index int, image, subPath string) (oci.ImageVolume, error) {
	v, err := r.Store.CreateImageVolume(ctx, id, index, image, subPath)
	if err != nil {
		return oci.ImageVolume{}, err
	}
	return oci.ImageVolume{HostPath: v.Path, ImageRef: v.ImageID}, nil
}

func storageIDMaps(in []oci.IDMap) []storage.IDMap {
	out := make([]storage.IDMap, len(in))
	for i, m := range in {
		out[i] = storage.IDMap{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size}
	}
	return out
}
