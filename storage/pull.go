package storage

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"

	"github.com/berth-cri/berth/errdefs"
)

// Auth are registry credentials, as a CRI AuthConfig carries them.
type Auth struct {
	Username string
	Password string
	// Auth is base64("username:password"), as in a docker config.json.
	Auth string
	// IdentityToken is an OAuth refresh token exchanged for access tokens.
	IdentityToken string
	// RegistryToken is a bearer token sent to the registry as is.
	RegistryToken string
	// ServerAddress is the registry the credentials are for (kubelet
	// sets it from the pull secret's key). They are sent to that
	// registry only; without it, only to the one registry a fully
	// qualified reference names.
	ServerAddress string
}

// forRegistry returns the credentials to send to registry host (a
// reference's domain, "docker.io" for Docker Hub) when candidates
// registries are tried for one pull: a, or none. Credentials for one
// registry must never reach another (an unqualified-search registry run
// by someone else would collect them).
func (a Auth) forRegistry(host string, candidates int) Auth {
	if a == (Auth{}) {
		return a
	}
	if a.ServerAddress == "" {
		if candidates == 1 {
			return a
		}
		return Auth{}
	}
	// A docker config key may be a glob ("*.gcr.io"), as kubelet's are.
	if ok, _ := path.Match(normalizeRegistry(a.ServerAddress), normalizeRegistry(host)); ok {
		return a
	}
	return Auth{}
}

// normalizeRegistry reduces a server address as kubelet and docker
// config files write it ("https://index.docker.io/v1/", "quay.io",
// "localhost:5000/v2") to its host, with Docker Hub's names as docker.io.
func normalizeRegistry(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return s
}

// apply puts the credentials into sys.
func (a Auth) apply(sys *types.SystemContext) error {
	user, pass := a.Username, a.Password
	if a.Auth != "" && user == "" && pass == "" {
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return errdefs.Invalidf("auth: the \"auth\" field is not base64: %v", err)
		}
		var ok bool
		if user, pass, ok = strings.Cut(string(raw), ":"); !ok {
			return errdefs.Invalidf("auth: the \"auth\" field does not decode to username:password")
		}
	}
	sys.DockerAuthConfig = &types.DockerAuthConfig{Username: user, Password: pass, IdentityToken: a.IdentityToken}
	sys.DockerBearerRegistryToken = a.RegistryToken
	return nil
}

// identity keys shared downloads: callers with different credentials
// never share one, so nobody gets an image their credentials could not.
func (a Auth) identity() string {
	if a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "" {
		return "anonymous"
	}
	h := sha256.New()
	for _, f := range []string{a.Username, a.Password, a.Auth, a.IdentityToken, a.RegistryToken} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// progressInterval is how often a running download reports its bytes.
const progressInterval = 2 * time.Second

// Pull fetches ref from its registry into the store and returns the
// image. Short names resolve as pullCandidates says, trying each
// candidate in turn. Concurrent pulls of one reference with the same
// credentials share one download; a caller that cancels leaves it
// running for the others. A caller with no deadline waits at most
// Options.PullTimeout. A failed or cancelled pull leaves no image and,
// once no other pull runs, no layer behind.
func (s *Store) Pull(ctx context.Context, ref string, auth Auth) (*Image, error) {
	// Checked once, before any registry is asked.
	if err := auth.apply(s.systemContext()); err != nil {
		return nil, err
	}
	cands, err := pullCandidates(s.systemContext(), ref)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.PullTimeout)
		defer cancel()
	}
	var errs []error
	for _, n := range cands {
		a := auth.forRegistry(registryOf(n), len(cands))
		sys := s.systemContext()
		if err := a.apply(sys); err != nil {
			return nil, err
		}
		img, err := s.pullOne(ctx, sys, n, a)
		if err == nil {
			return img, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, joinPullErrors(ref, errs)
}

// joinPullErrors reports every candidate's failure, with the kind of the
// most telling one: a registry being down or refusing credentials says
// more than another registry not having the image.
func joinPullErrors(ref string, errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	kind := errdefs.KindNotFound
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
		if k := errdefs.KindOf(e); k != errdefs.KindNotFound && kind == errdefs.KindNotFound {
			kind = k
		}
	}
	return errdefs.Mark(kind, fmt.Errorf("pull %s: every candidate failed:\n * %s", ref, strings.Join(msgs, "\n * ")))
}

func (s *Store) pullOne(ctx context.Context, sys *types.SystemContext, n reference.Named, auth Auth) (*Image, error) {
	if err := checkBlocked(sys, n); err != nil {
		return nil, err
	}
	key := n.String() + "\x00" + auth.identity()
	img, shared, err := s.pulls.do(ctx, key, func(ctx context.Context) (*Image, error) {
		return s.download(ctx, sys, n)
	})
	if shared && err == nil {
		logrus.Debugf("pull %s: shared another caller's download", n)
	}
	if err != nil && isContextError(err) && errdefs.KindOf(err) == errdefs.KindUnknown {
		err = fmt.Errorf("pull %s: %w", n, err)
	}
	return img, err
}

// download copies n into the store, retrying transient failures.
func (s *Store) download(ctx context.Context, sys *types.SystemContext, n reference.Named) (img *Image, err error) {
	s.beginPull()
	defer func() { s.endPull(err != nil) }()

	srcRef, err := docker.NewReference(n)
	if err != nil {
		return nil, errdefs.Invalidf("image reference %s: %v", n, err)
	}
	destRef, err := istorage.Transport.NewStoreReference(s.store, n, "")
	if err != nil {
		return nil, errdefs.Invalidf("image reference %s: %v", n, err)
	}
	pc, err := s.policyContext()
	if err != nil {
		return nil, errdefs.FailedPrecondition(err)
	}
	defer pc.Destroy()

	start := time.Now()
	logrus.Infof("pulling %s", n)
	progress := make(chan types.ProgressProperties)
	statsDone := make(chan pullStats, 1)
	go func() { statsDone <- collectProgress(n, progress) }()

	var resolved types.ImageReference
	for attempt := 0; ; attempt++ {
		_, err = copy.Image(ctx, pc, destRef, srcRef, &copy.Options{
			SourceCtx:               sys,
			DestinationCtx:          sys,
			ProgressInterval:        progressInterval,
			Progress:                progress,
			ReportResolvedReference: &resolved,
		})
		if err == nil || attempt >= s.opts.PullRetries || !isTransient(err) || ctx.Err() != nil {
			break
		}
		wait := s.opts.RetryBackoff << attempt
		logrus.Warnf("pull %s: attempt %d failed, retrying in %s: %v", n, attempt+1, wait, err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	close(progress)
	stats := <-statsDone
	if s.opts.OnPullBytes != nil && stats.bytes > 0 {
		s.opts.OnPullBytes(stats.bytes)
	}
	if err != nil {
		err = classifyPullError(n, err)
		logrus.Warnf("pull %s failed after %s (%d bytes read): %v", n, time.Since(start).Round(time.Millisecond), stats.bytes, err)
		return nil, err
	}
	if resolved == nil {
		return nil, fmt.Errorf("pull %s: the store reported no image", n)
	}
	_, simg, err := istorage.ResolveReference(resolved)
	if err != nil {
		return nil, fmt.Errorf("pull %s: find the pulled image: %w", n, err)
	}
	img, err = s.describe(ctx, simg)
	if err != nil {
		return nil, err
	}
	d := time.Since(start)
	logrus.WithFields(logrus.Fields{
		"image": n.String(), "id": img.ID, "layers": stats.layers, "reused": stats.skipped,
		"bytes": stats.bytes, "seconds": fmt.Sprintf("%.2f", d.Seconds()),
	}).Infof("pulled %s", n)
	return img, nil
}

type pullStats struct {
	layers, skipped int
	bytes           uint64
}

// collectProgress counts and logs a copy's progress until the channel
// closes. containers/image blocks on the channel, so it must be drained.
func collectProgress(n reference.Named, ch <-chan types.ProgressProperties) pullStats {
	var st pullStats
	for p := range ch {
		switch p.Event {
		case types.ProgressEventNewArtifact:
			st.layers++
		case types.ProgressEventSkipped:
			st.skipped++
		case types.ProgressEventRead:
			st.bytes += p.OffsetUpdate
			logrus.Debugf("pull %s: blob %s: %d of %d bytes", n, p.Artifact.Digest, p.Offset, p.Artifact.Size)
		case types.ProgressEventDone:
			st.bytes += p.OffsetUpdate
			logrus.Debugf("pull %s: blob %s done (%d bytes)", n, p.Artifact.Digest, p.Offset)
		}
	}
	return st
}

func (s *Store) beginPull() {
	s.pullMu.Lock()
	s.active++
	s.pullMu.Unlock()
}

// endPull: after a failure, sweep the layers the failed copy committed
// before it died, once no pull is running (a running one may still be
// about to reference its fresh layers from a new image).
func (s *Store) endPull(failed bool) {
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	s.active--
	if failed {
		s.gcNeeded = true
	}
	if s.active == 0 && s.gcNeeded {
		s.gcNeeded = false
		if err := s.sweepLayersLocked(); err != nil {
			logrus.Warnf("storage: removing layers of failed pulls: %v", err)
		}
	}
}

// errNoImage is returned for lookups that find nothing.
var errNoImage = errors.New("no such image")
