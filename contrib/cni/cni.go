// Package cni carries the CNI network config Berth ships
// (10-berth-bridge.conflist), built into berthd so that a node with no CNI
// config of its own can run pods at once. The file in this directory is
// the one source: `make install` copies it to /etc/cni/net.d and berthd
// embeds the same bytes, so the two cannot drift apart.
package cni

import _ "embed"

// BridgeConfListName is the file name the config is installed under.
const BridgeConfListName = "10-berth-bridge.conflist"

// BridgeConfList is contrib/cni/10-berth-bridge.conflist: bridge berth0,
// pods on 10.87.0.0/16 (host-local), portmap (berthd brings lo up itself).
//
//go:embed 10-berth-bridge.conflist
var BridgeConfList []byte
