// Package oci runs Berth's containers: it turns a CRI ContainerConfig, the
// image's config and the pod's namespaces into an OCI runtime spec, writes
// the bundle, starts the container under a berth-monitor through any
// runc-compatible runtime binary, and keeps each container's record and
// state (created, running, exited) on disk so a restarted berthd adopts
// what kept running and cleans what a crash left half-made.
//
// Spec generation (spec*.go) is pure: it reads the image's /etc/passwd and
// the host's devices but starts nothing, so it is unit-tested on its own.
//
// Layout:
//
//	<root>/containers/<id>/container.json  the record (atomically replaced)
//	<runroot>/containers/<id>/config.json  the bundle's spec
//	<runroot>/containers/<id>/{pid,attach,ctl,runtime.log,monitor.log}
//	<runroot>/exits/<id>                   written by the monitor on exit
//
// The root survives a reboot, the run root does not: a record whose
// monitor is gone and whose exit file is missing is an exit with unknown
// status (kubelet then restarts the container).
package oci
