package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/storage"
)

// ListImages lists every image, or the one req.Filter names.
func (s *Server) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	imgs, err := s.img.store.ListImages(ctx, req.GetFilter().GetImage().GetImage())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ListImagesResponse{Images: make([]*runtimeapi.Image, 0, len(imgs))}
	for _, img := range imgs {
		resp.Images = append(resp.Images, toCRIImage(img))
	}
	return resp, nil
}

// ImageStatus describes one image. An unknown image is not an error: the
// CRI answers it with no image. Verbose adds info["info"], a JSON object
// with the OCI image config (runtime config, platform, history).
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.Invalidf("image.image is required")
	}
	img, err := s.img.store.ResolveImage(ctx, ref)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: toCRIImage(img)}
	if req.GetVerbose() {
		info, err := json.Marshal(verboseImageInfo{
			ID:             img.ID,
			RepoTags:       img.RepoTags,
			RepoDigests:    img.RepoDigests,
			ManifestDigest: img.Digest.String(),
			Size:           img.Size,
			Pinned:         img.Pinned,
			ImageSpec:      img.Config,
		})
		if err != nil {
			return nil, fmt.Errorf("encode image info: %w", err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// verboseImageInfo is ImageStatus's verbose info["info"]. imageSpec is
// the name containerd and CRI-O use, so tools reading it work unchanged.
type verboseImageInfo struct {
	ID             string   `json:"id"`
	RepoTags       []string `json:"repoTags,omitempty"`
	RepoDigests    []string `json:"repoDigests,omitempty"`
	ManifestDigest string   `json:"manifestDigest,omitempty"`
	Size           uint64   `json:"size"`
	Pinned         bool     `json:"pinned"`
	ImageSpec      any      `json:"imageSpec"`
}

func toCRIImage(img *storage.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id:          img.ID,
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        img.Size,
		Spec:        &runtimeapi.ImageSpec{Image: img.ID},
		Pinned:      img.Pinned,
	}
	var user string
	if img.Config != nil {
		user = img.Config.Config.User
	}
	out.Uid, out.Username = imageUser(user)
	return out
}

// imageUser splits an image config's user ("", "1000", "1000:1000",
// "berth", "berth:staff") as kubelet wants it: a numeric user as uid, a
// name as username (kubelet's runAsNonRoot check needs to know which).
// No user means root.
func imageUser(user string) (*runtimeapi.Int64Value, string) {
	u, _, _ := strings.Cut(user, ":")
	if u == "" {
		return &runtimeapi.Int64Value{Value: 0}, ""
	}
	if uid, err := strconv.ParseInt(u, 10, 64); err == nil {
		return &runtimeapi.Int64Value{Value: uid}, ""
	}
	return nil, u
}
