package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
)

// Options configure Open. Zero values take the defaults noted.
type Options struct {
	// Driver is "overlay" (default) or "vfs". Overlay falls back to vfs,
	// with a warning, where the kernel or filesystem cannot mount it.
	Driver string
	// DriverOptions are graph driver options ("overlay.mountopt=nodev").
	DriverOptions []string
	// GraphRoot holds layers, images and containers; RunRoot holds mount
	// state that dies with the machine. Both required, absolute.
	GraphRoot string
	RunRoot   string
	// RegistriesConf is a containers registries.conf; its drop-ins are
	// read from RegistriesConf+".d". Empty: the library default,
	// /etc/containers/registries.conf (and .d) when present.
	RegistriesConf string
	// SignaturePolicy is a containers policy.json, read at every pull.
	// Empty: accept any image.
	SignaturePolicy string
	// PullRetries is how many times a transient registry error (refused
	// or reset connection, 5xx, 429) is retried, with backoff.
	PullRetries int
	// PullTimeout bounds a pull whose caller sets no deadline (30m).
	PullTimeout time.Duration
	// RetryBackoff is the first wait between retries, doubled each time
	// (1s).
	RetryBackoff time.Duration
	// PinnedImages are references never reported unpinned nor removed
	// (the configured pause image).
	PinnedImages []string
	// UserAgent is sent to registries.
	UserAgent string
	// OnPullBytes, if set, is told how many blob bytes each pull read
	// from registries (for metrics).
	OnPullBytes func(n uint64)
}

// Store is the image and container-filesystem store.
type Store struct {
	store  cstorage.Store
	opts   Options
	driver string

	pulls    flights
	pullMu   sync.Mutex
	active   int  // pulls running now
	gcNeeded bool // a pull failed: sweep unreferenced layers when none runs

	configs configCache
	fs      fsCache

	rootfsMu sync.Mutex // serialises mount and unmount of one store's containers
	// removeMu serialises RemoveImage: its lookup, name and delete steps
	// are separate store calls, so two removals of one image would
	// otherwise race and the loser fail on an image already gone.
	removeMu sync.Mutex
}

// Open opens (creating if needed) the store and removes what a crash
// left half-made: layers no image or container uses.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if !filepath.IsAbs(opts.GraphRoot) || !filepath.IsAbs(opts.RunRoot) {
		return nil, fmt.Errorf("storage: graph root %q and run root %q must be absolute paths", opts.GraphRoot, opts.RunRoot)
	}
	if opts.Driver == "" {
		opts.Driver = "overlay"
	}
	if opts.PullTimeout <= 0 {
		opts.PullTimeout = 30 * time.Minute
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = time.Second
	}
	if opts.RegistriesConf != "" {
		if _, err := os.Stat(opts.RegistriesConf); err != nil {
			return nil, fmt.Errorf("storage: registries configuration: %w", err)
		}
	}
	if opts.SignaturePolicy != "" {
		// Fail at start, not at the first pull, on a broken policy.
		if _, err := signature.NewPolicyFromFile(opts.SignaturePolicy); err != nil {
			return nil, fmt.Errorf("signature policy %s: %w", opts.SignaturePolicy, err)
		}
	}
	s := &Store{opts: opts}
	store, driver, err := openStore(opts)
	if err != nil {
		return nil, err
	}
	s.store, s.driver = store, driver
	s.configs.m = map[string]*imageConfig{}
	if err := os.MkdirAll(s.pullTmpDir(), 0o700); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if _, err := sysregistriesv2.TryUpdatingCache(s.systemContext()); err != nil {
		// A broken registries.conf should stop berthd now, not fail
		// every pull later.
		return nil, fmt.Errorf("storage: registries configuration %s: %w", sysregistriesv2.ConfigurationSourceDescription(s.systemContext()), err)
	}
	if err := s.sweepLayers(); err != nil {
		logrus.Warnf("storage: removing unreferenced layers: %v", err)
	}
	s.closeOpenedLayers()
	logrus.Infof("storage: %s driver, graph root %s, run root %s", driver, store.GraphRoot(), store.RunRoot())
	return s, nil
}

// openStore tries the configured driver, then vfs if overlay cannot work
// here (no overlay in the kernel, a graph root on a filesystem overlay
// cannot sit on, no permission to mount).
func openStore(opts Options) (cstorage.Store, string, error) {
	so := cstorage.StoreOptions{
		GraphRoot:          opts.GraphRoot,
		RunRoot:            opts.RunRoot,
		GraphDriverName:    opts.Driver,
		GraphDriverOptions: opts.DriverOptions,
	}
	store, err := cstorage.GetStore(so)
	if err == nil {
		return store, opts.Driver, nil
	}
	if opts.Driver != "overlay" {
		return nil, "", fmt.Errorf("storage: open %s store at %s: %w", opts.Driver, opts.GraphRoot, err)
	}
	if hasLayersOf(opts.GraphRoot, "overlay") {
		// Switching drivers would hide every image pulled so far.
		return nil, "", fmt.Errorf("storage: overlay store at %s holds images but overlay does not work now: %w", opts.GraphRoot, err)
	}
	logrus.Warnf("storage: overlay driver unusable (%v); falling back to vfs: every container gets a full copy of its image", err)
	so.GraphDriverName = "vfs"
	store, err2 := cstorage.GetStore(so)
	if err2 != nil {
		return nil, "", fmt.Errorf("storage: open store at %s: overlay: %w; vfs: %w", opts.GraphRoot, err, err2)
	}
	return store, "vfs", nil
}

func hasLayersOf(graphRoot, driver string) bool {
	entries, err := os.ReadDir(filepath.Join(graphRoot, driver+"-layers"))
	return err == nil && len(entries) > 0
}

// Driver is the graph driver in use: overlay or vfs.
func (s *Store) Driver() string { return s.driver }

// GraphRoot is where layers, images and containers live.
func (s *Store) GraphRoot() string { return s.store.GraphRoot() }

// Close releases the store. Mounted container filesystems stay mounted:
// their containers keep running without berthd.
func (s *Store) Close() error {
	_, err := s.store.Shutdown(false)
	if errors.Is(err, cstorage.ErrLayerUsedByContainer) {
		return nil
	}
	return err
}

// systemContext is the containers/image context every operation uses.
// It reads nothing of the host's per-user state: credentials come from
// the request only (kubelet resolves pull secrets and credential
// providers), and the blob-info cache and short-name alias records live
// in the graph root.
func (s *Store) systemContext() *types.SystemContext {
	sys := &types.SystemContext{
		SignaturePolicyPath:        s.opts.SignaturePolicy,
		BlobInfoCacheDir:           filepath.Join(s.store.GraphRoot(), "blob-info-cache"),
		UserShortNameAliasConfPath: filepath.Join(s.store.GraphRoot(), "short-name-aliases.conf"),
		BigFilesTemporaryDir:       s.pullTmpDir(),
		DockerRegistryUserAgent:    s.opts.UserAgent,
		DockerAuthConfig:           &types.DockerAuthConfig{}, // anonymous unless the request says otherwise
		OSChoice:                   "linux",
	}
	if s.opts.RegistriesConf != "" {
		sys.SystemRegistriesConfPath = s.opts.RegistriesConf
		sys.SystemRegistriesConfDirPath = s.opts.RegistriesConf + ".d"
	}
	return sys
}

// policyContext builds the signature policy for one pull; the policy file
// is read each time so edits apply without a restart.
func (s *Store) policyContext() (*signature.PolicyContext, error) {
	var policy *signature.Policy
	if s.opts.SignaturePolicy == "" {
		policy = &signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}}
	} else {
		var err error
		if policy, err = signature.NewPolicyFromFile(s.opts.SignaturePolicy); err != nil {
			return nil, fmt.Errorf("signature policy %s: %w", s.opts.SignaturePolicy, err)
		}
	}
	return signature.NewPolicyContext(policy)
}
