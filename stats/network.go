package stats

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// readNetwork lists the interfaces of the network namespace pinned at
// path with their counters. netlink's handle makes its socket inside the
// namespace (on a locked thread, restored at once), so berthd's own
// threads never change namespace.
func readNetwork(path string) (*Network, error) {
	ns, err := netns.GetFromPath(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // unpinned meanwhile: the pod stopped
	}
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces in %s: %w", path, err)
	}
	n := &Network{Timestamp: time.Now()}
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || a.Name == "lo" {
			continue
		}
		i := Interface{Name: a.Name}
		if s := a.Statistics; s != nil {
			i.RxBytes, i.RxPackets, i.RxErrors, i.RxDropped = s.RxBytes, s.RxPackets, s.RxErrors, s.RxDropped
			i.TxBytes, i.TxPackets, i.TxErrors, i.TxDropped = s.TxBytes, s.TxPackets, s.TxErrors, s.TxDropped
		}
		n.Interfaces = append(n.Interfaces, i)
	}
	return n, nil
}
