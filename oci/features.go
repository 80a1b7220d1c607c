package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// HandlerFeatures are the CRI features a runtime handler's binary can
// carry out, as kubelet asks for them in Status's runtime_handlers.
type HandlerFeatures struct {
	// RecursiveReadOnlyMounts: the runtime knows the "rro" mount option
	// (mount_setattr(MOUNT_ATTR_RDONLY, AT_RECURSIVE)).
	RecursiveReadOnlyMounts bool
	// UserNamespaces: the runtime joins user namespaces and makes
	// idmapped mounts (the runtime-spec mount uidMappings/gidMappings),
	// which a pod's volumes need. runc 1.1 has the first, not the second.
	UserNamespaces bool
}

// featuresTimeout bounds one `features` call: it prints a document and
// exits.
const featuresTimeout = 10 * time.Second

// featureCache keeps each binary's answer while the binary is unchanged
// (same path, size and modification time): Status is called every few
// seconds and the answer only changes with the binary.
var featureCache = struct {
	sync.Mutex
	m map[string]cachedFeatures
}{m: map[string]cachedFeatures{}}

type cachedFeatures struct {
	size    int64
	modTime time.Time
	f       HandlerFeatures
}

// Features asks the runtime binary what it supports (`features`, the
// runtime-spec features document runc, crun and berth-runner print). A
// runtime without the subcommand supports none of the features.
func (r *Runtime) Features(ctx context.Context) (HandlerFeatures, error) {
	st, err := os.Stat(r.Path)
	if err != nil {
		return HandlerFeatures{}, fmt.Errorf("runtime %s: %w", r.Handler, err)
	}
	featureCache.Lock()
	c, ok := featureCache.m[r.Path]
	featureCache.Unlock()
	if ok && c.size == st.Size() && c.modTime.Equal(st.ModTime()) {
		return c.f, nil
	}
	ctx, cancel := context.WithTimeout(ctx, featuresTimeout)
	defer cancel()
	out, err := r.run(ctx, nil, "features")
	if err != nil {
		return HandlerFeatures{}, err
	}
	f, err := parseFeatures(out)
	if err != nil {
		return HandlerFeatures{}, fmt.Errorf("runtime %s: %w", r.Handler, err)
	}
	featureCache.Lock()
	featureCache.m[r.Path] = cachedFeatures{size: st.Size(), modTime: st.ModTime(), f: f}
	featureCache.Unlock()
	return f, nil
}

// parseFeatures reads a runtime-spec features document.
func parseFeatures(doc []byte) (HandlerFeatures, error) {
	var f features.Features
	if err := json.Unmarshal(doc, &f); err != nil {
		return HandlerFeatures{}, fmt.Errorf("parse features document: %w", err)
	}
	var out HandlerFeatures
	out.RecursiveReadOnlyMounts = slices.Contains(f.MountOptions, "rro")
	if l := f.Linux; l != nil {
		idmap := l.MountExtensions != nil && l.MountExtensions.IDMap != nil &&
			l.MountExtensions.IDMap.Enabled != nil && *l.MountExtensions.IDMap.Enabled
		out.UserNamespaces = slices.Contains(l.Namespaces, "user") && idmap
	}
	return out, nil
}
