package monitorclient

import (
	"context"
	"fmt"
	"net"

	"github.com/berth-cri/berth/monitor"
)

// dialPacket connects to the monitor's seqpacket socket at path.
func dialPacket(ctx context.Context, path string) (*net.UnixConn, error) {
	name, done, err := monitor.SocketName(path)
	if err != nil {
		return nil, err
	}
	defer done()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", name)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", path, err)
	}
	return c.(*net.UnixConn), nil
}
