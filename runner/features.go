package runner

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/runc/libcontainer/apparmor"
	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	selinux "github.com/opencontainers/selinux/go-selinux"
)

// Annotation keys of the features JSON that are ours.
const (
	AnnotationVersion           = "org.berth-cri.runner.version"
	AnnotationLibseccompVersion = "io.github.seccomp.libseccomp.version"
)

var featuresCommand = &command{
	name:    "features",
	usage:   "show the enabled features",
	maxArgs: 0,
	run: func(inv *invocation) error {
		enc := json.NewEncoder(inv.app.Stdout)
		enc.SetIndent("", "    ")
		return enc.Encode(Features(inv.app.Version))
	},
}

// Features is the runtime-spec features document of this build: what the
// runtime supports, not what this host has (as the spec asks), except for
// what we refuse everywhere (checkpoint; systemd's per-user manager).
func Features(version string) *features.Features {
	t, f := true, false
	feat := &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Annotations:   map[string]string{AnnotationVersion: version},
		Hooks:         configs.KnownHookNames(),
		MountOptions:  specconv.KnownMountOptions(),
		Linux: &features.Linux{
			Namespaces:   specconv.KnownNamespaces(),
			Capabilities: capabilities.KnownCapabilities(),
			Cgroup: &features.Cgroup{
				V1:          &t,
				V2:          &t,
				Systemd:     &t,
				SystemdUser: &f,
				Rdma:        &t,
			},
			Apparmor: &features.Apparmor{Enabled: ptr(apparmor.IsEnabled())},
			Selinux:  &features.Selinux{Enabled: ptr(selinux.GetEnabled())},
			IntelRdt: &features.IntelRdt{Enabled: &t, Schemata: &t, Monitoring: &t},
			MemoryPolicy: &features.MemoryPolicy{
				Modes: specconv.KnownMemoryPolicyModes(),
				Flags: specconv.KnownMemoryPolicyFlags(),
			},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &t}},
			NetDevices:      &features.NetDevices{Enabled: &t},
		},
		PotentiallyUnsafeConfigAnnotations: []string{"bundle", "org.systemd.property.", "org.criu.config"},
	}
	if seccomp.Enabled {
		feat.Linux.Seccomp = &features.Seccomp{
			Enabled:        &t,
			Actions:        seccomp.KnownActions(),
			Operators:      seccomp.KnownOperators(),
			Archs:          seccomp.KnownArchs(),
			KnownFlags:     seccomp.KnownFlags(),
			SupportedFlags: seccomp.SupportedFlags(),
		}
		feat.Annotations[AnnotationLibseccompVersion] = seccompVersion()
	} else {
		feat.Linux.Seccomp = &features.Seccomp{Enabled: &f}
	}
	return feat
}

func seccompVersion() string {
	major, minor, patch := seccomp.Version()
	if major+minor+patch == 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", major, minor, patch)
}
