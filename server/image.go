package server

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cri/berth/storage"
)

// imageService is the ImageService's state: the one store that holds
// images and container root filesystems. The container code reaches
// root filesystems through s.img.store. The RPCs are in image_pull.go,
// image_list.go, image_remove.go and image_fsinfo.go.
type imageService struct {
	store *storage.Store
	// pullBytes is the metrics counter, set once metrics exist.
	pullBytes atomic.Pointer[prometheus.Counter]
}

// initImages opens the store from berth.toml: graph root
// <root>/storage and run root <runroot>/storage unless configured.
func (s *Server) initImages(ctx context.Context) error {
	cfg := s.Config()
	ic := cfg.Image
	graph, run := ic.GraphRoot, ic.RunRoot
	if graph == "" {
		graph = filepath.Join(cfg.Root, "storage")
	}
	if run == "" {
		run = filepath.Join(cfg.RunRoot, "storage")
	}
	var pinned []string
	if ic.PauseImage != "" {
		pinned = append(pinned, ic.PauseImage)
	}
	st, err := storage.Open(ctx, storage.Options{
		Driver:          ic.Driver,
		DriverOptions:   ic.DriverOptions,
		GraphRoot:       graph,
		RunRoot:         run,
		RegistriesConf:  ic.RegistriesConf,
		SignaturePolicy: ic.SignaturePolicy,
		PullRetries:     ic.PullRetries,
		PullTimeout:     ic.PullTimeout.Duration,
		PinnedImages:    pinned,
		UserAgent:       fmt.Sprintf("berth/%s", s.opts.Version),
		OnPullBytes:     s.img.countPullBytes,
	})
	if err != nil {
		return err
	}
	s.img.store = st
	return nil
}

func (i *imageService) close() error {
	if i.store == nil {
		return nil
	}
	return i.store.Close()
}

// setPullBytesCounter connects the pull-bytes metric.
func (i *imageService) setPullBytesCounter(c prometheus.Counter) { i.pullBytes.Store(&c) }

func (i *imageService) countPullBytes(n uint64) {
	if c := i.pullBytes.Load(); c != nil {
		(*c).Add(float64(n))
	}
}
