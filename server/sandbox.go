package server

import (
	"context"
	"os"

	"github.com/berth-cri/berth/config"
	contribcni "github.com/berth-cri/berth/contrib/cni"
	"github.com/berth-cri/berth/sandbox"
)

// podService is the pod sandbox state: a sandbox.Manager, which does the
// work. The RPCs are in sandbox_run.go, sandbox_stop.go and
// sandbox_status.go.
type podService struct {
	mgr *sandbox.Manager
}

// initPods restores every pod from disk (see sandbox.New). The container
// manager is up already: pods stop and watch their infra through it.
func (s *Server) initPods(ctx context.Context) error {
	cfg := s.Config()
	mgr, err := sandbox.New(ctx, sandbox.Options{
		Root:            cfg.Root,
		RunRoot:         cfg.RunRoot,
		CgroupDriver:    s.cgroups.Driver,
		CgroupParent:    s.cgroups.Parent,
		ShmSize:         cfg.Pod.ShmSize,
		HostResolvConf:  cfg.Pod.ResolvConf,
		UsernsMinHostID: cfg.Pod.UsernsMinHostID,
		Network: sandbox.NetworkOptions{
			ConfDir:    cfg.Network.ConfDir,
			PluginDirs: cfg.Network.PluginDirs,
			CacheDir:   cfg.Network.CacheDir,
			Fallback:   fallbackNetwork(cfg.Network.FallbackConfig),
		},
		Notifier: podNotifier{s},
		Infra:    infraRunner{s},
	})
	if err != nil {
		return err
	}
	s.pod.mgr = mgr
	return nil
}

func (p *podService) close() error {
	if p.mgr == nil {
		return nil
	}
	return p.mgr.Close()
}

func (p *podService) count() int {
	if p.mgr == nil {
		return 0
	}
	return p.mgr.Count()
}

// networkInfo says which CNI config new pods get, or why none.
func (p *podService) networkInfo() sandbox.NetworkInfo {
	if p.mgr == nil {
		return sandbox.NetworkInfo{Error: "pod sandboxes are not initialized"}
	}
	return p.mgr.NetworkInfo()
}

// fallbackNetwork turns network.fallback_config into the sandbox's
// fallback: the config built into berthd, a file, or none.
func fallbackNetwork(setting string) *sandbox.FallbackNetwork {
	switch setting {
	case config.FallbackNone:
		return nil
	case config.FallbackBuiltin:
		return &sandbox.FallbackNetwork{
			Source: "builtin contrib/cni/" + contribcni.BridgeConfListName,
			Load:   func() ([]byte, error) { return contribcni.BridgeConfList, nil },
		}
	default:
		return &sandbox.FallbackNetwork{Source: setting, Load: func() ([]byte, error) { return os.ReadFile(setting) }}
	}
}

// get returns a copy of the pod whose id is idOrPrefix or starts with it;
// the error is marked NotFound for an unknown id.
func (p *podService) get(idOrPrefix string) (*sandbox.Sandbox, error) {
	return p.mgr.Get(idOrPrefix)
}
