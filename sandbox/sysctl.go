package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/berth-cri/berth/errdefs"
)

// sysctl is one namespaced kernel parameter to set in a pod.
type sysctl struct {
	key   string // as requested, for messages
	path  string // relative to /proc/sys
	value string
}

// ipcSysctls are the IPC-namespaced parameters (besides fs.mqueue.*),
// the list kubelet and runc accept.
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

var sysctlKey = regexp.MustCompile(`^[a-zA-Z0-9_]+([./][-a-zA-Z0-9_@:]+)+$`)

// parseSysctls checks that every requested sysctl belongs to a namespace
// the pod owns (net.* to its network namespace, IPC ones to its IPC
// namespace) and turns keys into /proc/sys paths. Anything else would
// change the host, so it is refused.
func parseSysctls(req map[string]string, ownNet, ownIPC bool) ([]sysctl, error) {
	keys := make([]string, 0, len(req))
	for k := range req {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]sysctl, 0, len(keys))
	for _, k := range keys {
		v := req[k]
		if !sysctlKey.MatchString(k) {
			return nil, errdefs.Invalidf("sysctl %q: not a sysctl name", k)
		}
		if strings.ContainsAny(v, "\n\x00") {
			return nil, errdefs.Invalidf("sysctl %s: value contains a newline or NUL", k)
		}
		// kubelet sends dotted names; a name with slashes keeps its dots
		// (net/ipv4/conf/eth0.100/forwarding), as runc reads them.
		path := k
		if !strings.Contains(k, "/") {
			path = strings.ReplaceAll(k, ".", "/")
		}
		for _, part := range strings.Split(path, "/") {
			if part == "" || part == "." || part == ".." {
				return nil, errdefs.Invalidf("sysctl %q: not a sysctl name", k)
			}
		}
		dotted := strings.ReplaceAll(path, "/", ".")
		switch {
		case strings.HasPrefix(dotted, "net."):
			if !ownNet {
				return nil, errdefs.Invalidf("sysctl %s: the pod uses the host's network namespace; setting it would change the host", k)
			}
		case slices.Contains(ipcSysctls, dotted) || strings.HasPrefix(dotted, "fs.mqueue."):
			if !ownIPC {
				return nil, errdefs.Invalidf("sysctl %s: the pod uses the host's IPC namespace; setting it would change the host", k)
			}
		default:
			return nil, errdefs.Invalidf("sysctl %s: not namespaced (only net.*, fs.mqueue.* and the kernel IPC sysctls can be set per pod)", k)
		}
		out = append(out, sysctl{key: k, path: path, value: v})
	}
	return out, nil
}

// apply writes the sysctl. It must run on a thread inside the pod's
// namespaces: /proc/sys resolves net and IPC entries through the calling
// thread's namespaces.
func (s sysctl) apply() error {
	f, err := os.OpenFile(filepath.Join("/proc/sys", s.path), os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(s.value)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return errdefs.Invalid(fmt.Errorf("sysctl %s=%s: %w", s.key, s.value, err))
	}
	return nil
}
