// Package sandbox runs Berth's pod sandboxes: the namespaces a pod's
// containers share, its CNI network, its cgroup and the files every
// container of the pod mounts (hostname, resolv.conf, hosts, /dev/shm).
//
// A pod's namespaces are pinned by bind mounts under the run root, so no
// process has to live for them. The Manager decides where an infra
// process is needed (a shared PID namespace, a VM runtime), starts it
// through the InfraRunner it was built with, pins its PID namespace like
// the others, marks the pod NOTREADY when it exits, and stops it in every
// teardown.
//
// Every step of a pod's life is recorded on disk before the step that
// could leave something behind, so after a crash at any point the Manager
// rebuilds its view from the records and tears down what a half-done
// RunPodSandbox left: network attachment, namespace pins, the shm mount
// and the cgroup.
//
// Layout:
//
//	<root>/pods/<id>/sandbox.json     the record (atomically replaced)
//	<root>/pods/<id>/{hostname,resolv.conf,hosts}
//	<runroot>/ns/<id>/{net,ipc,uts,pid} namespace pins (nsfs bind mounts)
//	<runroot>/pods/<id>/shm           the pod's /dev/shm tmpfs
//
// The root survives a reboot and the run root does not: after a reboot the
// records are still there, the pins are gone, and the pods are listed
// NOTREADY until removed, as CRI-O does.
package sandbox
