package oci

import "github.com/berth-cri/berth/cgroupdriver"

// annotationSystemdSubgroup is crun's run.oci.systemd.subgroup: with the
// systemd driver on cgroup v2, crun before 1.22 puts the container in a
// "container" sub-cgroup of its scope and its limits there, unless this
// says "" (newer crun makes none by default). Berth sets it empty so every
// runtime puts the container and its limits in the scope itself, as runc
// does: the cgroup stats, updates and kubelet read.
const annotationSystemdSubgroup = "run.oci.systemd.subgroup"

// setCgroupAnnotations adds what runtimes need to place a container of the
// pod whose cgroup is podCgroup; a request cannot override it.
func setCgroupAnnotations(podCgroup string, a map[string]string) {
	if cgroupdriver.Of(podCgroup) == cgroupdriver.Systemd {
		a[annotationSystemdSubgroup] = ""
	}
}
