package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker/reference"
	istorage "go.podman.io/image/v5/storage"
	cstorage "go.podman.io/storage"

	"github.com/berth-cri/berth/errdefs"
)

// Image is an image in the store, as the CRI reports it.
type Image struct {
	// ID is "sha256:<hex>", the digest of the image's config.
	ID string
	// RepoTags are its names with a tag ("docker.io/library/busybox:1.36").
	RepoTags []string
	// RepoDigests are repo@digest references that pull exactly this
	// image: its digest names, and each tagged repository at each of the
	// image's manifest digests (for an image pulled from an index, the
	// index's digest and the instance's).
	RepoDigests []string
	// Size is the bytes the image takes in the store (layers unpacked).
	Size uint64
	// Digest is the manifest digest it was pulled by.
	Digest digest.Digest
	// Config is the image's OCI config (runtime config, history,
	// platform); a Docker config is converted.
	Config *ocispec.Image
	// Pinned images are never removed (the configured pause image).
	Pinned bool
	// Annotations are its OCI manifest's annotations (a Docker manifest
	// has none).
	Annotations map[string]string
}

// configCache keeps parsed configs and sizes by store image ID, so that
// listing images (which kubelet does constantly) reads neither again: an
// ID is the config's digest and an image's layers never change, so an
// entry never goes stale, only unused (the size may miss a manifest added
// later, a few KiB, as in CRI-O's cache).
type configCache struct {
	mu sync.Mutex
	m  map[string]*imageConfig
}

type imageConfig struct {
	config      *ocispec.Image
	size        uint64
	annotations map[string]string
}

func (c *configCache) get(id string) *imageConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *configCache) put(id string, ic *imageConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[id] = ic
}

// keep drops entries of images no longer in the store.
func (c *configCache) keep(ids map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.m {
		if !ids[id] {
			delete(c.m, id)
		}
	}
}

// describe turns a store image into an Image.
func (s *Store) describe(ctx context.Context, simg *cstorage.Image) (*Image, error) {
	return s.describeWith(ctx, simg, s.pinnedIDs())
}

// describeWith is describe with the pinned image IDs already looked up.
func (s *Store) describeWith(ctx context.Context, simg *cstorage.Image, pinned map[string]bool) (*Image, error) {
	ic := s.configs.get(simg.ID)
	if ic == nil {
		ref, err := istorage.Transport.NewStoreReference(s.store, nil, simg.ID)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", simg.ID, err)
		}
		src, err := ref.NewImage(ctx, s.systemContext())
		if err != nil {
			return nil, fmt.Errorf("image %s: open: %w", simg.ID, err)
		}
		cfg, err := src.OCIConfig(ctx)
		var annotations map[string]string
		if err == nil {
			annotations, err = manifestAnnotations(ctx, src)
		}
		src.Close()
		if err != nil {
			return nil, fmt.Errorf("image %s: read config: %w", simg.ID, err)
		}
		size, err := s.store.ImageSize(simg.ID)
		if err != nil {
			return nil, fmt.Errorf("image %s: size: %w", simg.ID, err)
		}
		ic = &imageConfig{config: cfg, size: uint64(max(size, 0)), annotations: annotations}
		s.configs.put(simg.ID, ic)
	}
	img := &Image{
		ID:     FormatID(simg.ID),
		Size:   ic.size,
		Digest: simg.Digest,
		Config: ic.config,
		Pinned: pinned[simg.ID],

		Annotations: ic.annotations,
	}
	img.RepoTags, img.RepoDigests = repoNames(simg)
	return img, nil
}

// repoNames splits an image's names into tags and digests, and adds
// repo@digest for each tagged repository and each manifest digest of the
// image, as kubelet expects to find in RepoDigests.
func repoNames(simg *cstorage.Image) (tags, digests []string) {
	seen := map[string]bool{}
	addDigest := func(s string) {
		if !seen[s] {
			seen[s] = true
			digests = append(digests, s)
		}
	}
	var repos []reference.Named
	for _, name := range simg.Names {
		n, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			continue
		}
		if _, ok := n.(reference.Canonical); ok {
			addDigest(n.String())
		} else {
			tags = append(tags, n.String())
		}
		repos = append(repos, reference.TrimNamed(n))
	}
	ds := simg.Digests
	if simg.Digest != "" && !slices.Contains(ds, simg.Digest) {
		ds = append([]digest.Digest{simg.Digest}, ds...)
	}
	for _, r := range repos {
		for _, d := range ds {
			if c, err := reference.WithDigest(r, d); err == nil {
				addDigest(c.String())
			}
		}
	}
	sort.Strings(tags)
	sort.Strings(digests)
	return tags, digests
}

// lookup finds the stored image ref names: a full or "sha256:" ID, an ID
// prefix ("sha256:" and 3 or more hex digits, or 12 or more bare ones, as
// crictl prints them), a name (short names resolved as localCandidates
// says) or a repo@digest. It also returns the name that matched, nil
// when matched by ID.
func (s *Store) lookup(ref string) (*cstorage.Image, reference.Named, error) {
	in := strings.TrimSpace(ref)
	if in == "" {
		return nil, nil, errdefs.Invalidf("image reference is empty")
	}
	if id, ok := parseID(in); ok {
		img, err := s.store.Image(id)
		if err != nil {
			return nil, nil, s.notFound(in, err)
		}
		return img, nil, nil
	}
	if hex, explicit, ok := parseIDPrefix(in); ok {
		if img, err := s.store.Image(hex); err == nil && strings.HasPrefix(img.ID, hex) {
			return img, nil, nil
		}
		if explicit {
			return nil, nil, errdefs.NotFoundf("image %q not found", in)
		}
	}
	sys := s.systemContext()
	cands, err := localCandidates(sys, in)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range cands {
		if img, err := s.store.Image(n.String()); err == nil && slices.Contains(img.Names, n.String()) {
			return img, n, nil
		}
		if c, ok := n.(reference.Canonical); ok {
			imgs, err := s.store.ImagesByDigest(c.Digest())
			if err != nil {
				continue
			}
			for _, img := range imgs {
				if matchesRepo(img, n) {
					return img, n, nil
				}
			}
		}
	}
	return nil, nil, errdefs.NotFoundf("image %q not found", in)
}

func (s *Store) notFound(in string, err error) error {
	if errors.Is(err, cstorage.ErrImageUnknown) {
		return errdefs.NotFoundf("image %q not found", in)
	}
	return fmt.Errorf("image %q: %w", in, err)
}

// matchesRepo reports whether one of img's names is in n's repository.
func matchesRepo(img *cstorage.Image, n reference.Named) bool {
	repo := n.Name()
	return slices.ContainsFunc(img.Names, func(name string) bool {
		p, err := reference.ParseNormalizedNamed(name)
		return err == nil && p.Name() == repo
	})
}

// ResolveImage finds an image by ID, ID prefix, name or repo@digest, as
// the CRI names images (ImageSpec.Image). Unknown is NotFound.
func (s *Store) ResolveImage(ctx context.Context, ref string) (*Image, error) {
	simg, _, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	return s.describe(ctx, simg)
}

// ListImages returns every image, or with a filter the one image it
// names (none if unknown).
func (s *Store) ListImages(ctx context.Context, filter string) ([]*Image, error) {
	if strings.TrimSpace(filter) != "" {
		img, err := s.ResolveImage(ctx, filter)
		if errdefs.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []*Image{img}, nil
	}
	simgs, err := s.store.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]*Image, 0, len(simgs))
	ids := map[string]bool{}
	pinned := s.pinnedIDs()
	for i := range simgs {
		ids[simgs[i].ID] = true
		img, err := s.describeWith(ctx, &simgs[i], pinned)
		if err != nil {
			// Removed while we listed, or unreadable: list the rest.
			logrus.Warnf("list images: %v", err)
			continue
		}
		out = append(out, img)
	}
	s.configs.keep(ids)
	return out, nil
}

// RemoveImage removes what ref names, with CRI-O's semantics:
//   - by ID (or ID prefix): the image, all its names;
//   - by name (repo:tag): only that name, if the image has others; the
//     image when it was its last name;
//   - by repo@digest: the names of that repository (its tags and
//     digests), likewise.
//
// Removing an unknown image succeeds. An image that an existing
// container uses cannot be removed (FailedPrecondition naming the
// container), nor can a pinned one; removing one of several names can.
func (s *Store) RemoveImage(ctx context.Context, ref string) error {
	s.removeMu.Lock()
	defer s.removeMu.Unlock()
	simg, n, err := s.lookup(ref)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if n != nil {
		var drop []string
		if _, digested := n.(reference.Canonical); digested {
			for _, name := range simg.Names {
				if p, err := reference.ParseNormalizedNamed(name); err == nil && p.Name() == n.Name() {
					drop = append(drop, name)
				}
			}
		} else {
			drop = []string{n.String()}
		}
		if len(drop) < len(simg.Names) {
			if err := s.store.RemoveNames(simg.ID, drop); err != nil {
				return fmt.Errorf("remove names %v of image %s: %w", drop, simg.ID, err)
			}
			logrus.Infof("removed names %v of image %s", drop, simg.ID)
			return nil
		}
	}
	if s.pinnedIDs()[simg.ID] {
		return errdefs.FailedPreconditionf("image %s (%s) is pinned (image.pause_image): not removed", ref, FormatID(simg.ID))
	}
	if users, err := s.containersUsing(simg.ID); err != nil {
		return err
	} else if len(users) > 0 {
		return errdefs.FailedPreconditionf("image %s (%s) is in use by container %s: remove the container first", ref, FormatID(simg.ID), strings.Join(users, ", "))
	}
	if _, err := s.store.DeleteImage(simg.ID, true); err != nil {
		switch {
		case errors.Is(err, cstorage.ErrImageUnknown), errors.Is(err, cstorage.ErrNotAnImage):
			// Gone already (a pull's cleanup, or another store user).
			return nil
		case errors.Is(err, cstorage.ErrImageUsedByContainer):
			return errdefs.FailedPrecondition(fmt.Errorf("image %s is in use by a container: %w", ref, err))
		}
		return fmt.Errorf("remove image %s: %w", simg.ID, err)
	}
	logrus.Infof("removed image %s (%s)", FormatID(simg.ID), strings.Join(simg.Names, ", "))
	return nil
}

// containersUsing lists the containers (ID and name) made from image id.
func (s *Store) containersUsing(id string) ([]string, error) {
	ctrs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []string
	for _, c := range ctrs {
		if c.ImageID == id {
			label := c.ID
			if len(c.Names) > 0 {
				label += " (" + c.Names[0] + ")"
			}
			out = append(out, label)
		}
	}
	return out, nil
}

// pinnedIDs are the store IDs of the pinned images present now.
func (s *Store) pinnedIDs() map[string]bool {
	ids := make(map[string]bool, len(s.opts.PinnedImages))
	for _, p := range s.opts.PinnedImages {
		if img, _, err := s.lookup(p); err == nil {
			ids[img.ID] = true
		}
	}
	return ids
}
