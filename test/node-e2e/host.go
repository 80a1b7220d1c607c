package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/launch"
)

// kubeletRoot is the kubelet's root directory: the suite passes
// --root-dir /var/lib/kubelet itself and its specs read below it. The
// lane claims it: it refuses to run when it exists (another kubelet, or
// an interrupted run to clean by hand) and removes it when it is done,
// after checking that nothing is mounted below it.
const kubeletRoot = "/var/lib/kubelet"

// logDirs are where the kubelet keeps pod logs and its links to them;
// the suite's specs read /var/log/pods by that name. Other tools use
// them too (berthctl run writes pod logs there), so the lane only
// checks and removes the entries its run added.
var logDirs = []string{"/var/log/pods", "/var/log/containers"}

type host struct {
	before  map[string]bool // entries of logDirs before the run, by path
	existed map[string]bool // which logDirs existed before the run
}

func claimHost() (*host, error) {
	if _, err := os.Lstat(kubeletRoot); err == nil {
		return nil, fmt.Errorf("%s exists: another kubelet uses this host, or an interrupted run left it "+
			"(if nothing is mounted below it, remove it and run again)", kubeletRoot)
	}
	h := &host{before: map[string]bool{}, existed: map[string]bool{}}
	for _, d := range logDirs {
		entries, err := os.ReadDir(d)
		if err == nil {
			h.existed[d] = true
		}
		for _, e := range entries {
			h.before[filepath.Join(d, e.Name())] = true
		}
	}
	return h, nil
}

// release lists what the suite left (mounts below the kubelet's root,
// pods' directories, pod logs the run added), unmounts what is mounted
// and removes it all.
func (h *host) release(left []string) []string {
	// The kubelet bind-mounts its root onto itself (to make it a shared
	// mount) and leaves that when it stops, on any node; mounts below
	// the root are the pods' and must be gone.
	ms := launch.MountsUnder(kubeletRoot)
	for _, m := range ms {
		if m != kubeletRoot {
			left = append(left, "mount "+m)
		}
	}
	for i := len(ms) - 1; i >= 0; i-- {
		unix.Unmount(ms[i], unix.MNT_DETACH)
	}
	pods, _ := os.ReadDir(filepath.Join(kubeletRoot, "pods"))
	for _, p := range pods {
		left = append(left, "kubelet pod directory "+filepath.Join(kubeletRoot, "pods", p.Name()))
	}
	// Never RemoveAll through a mount: it would delete the host's files.
	if len(launch.MountsUnder(kubeletRoot)) == 0 {
		os.RemoveAll(kubeletRoot)
	} else {
		fmt.Fprintf(os.Stderr, "node-e2e: %s still has mounts; not removed\n", kubeletRoot)
	}
	for _, d := range logDirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			p := filepath.Join(d, e.Name())
			if !h.before[p] {
				left = append(left, "pod log "+p)
				os.RemoveAll(p)
			}
		}
		if !h.existed[d] {
			os.Remove(d) // only when empty
		}
	}
	return left
}

// suiteProcesses are the processes run from the Kubernetes build: the
// suite's services process (etcd, the apiserver and the namespace
// controller run inside it) and the kubelet, which the suite stops at
// its end; ginkgo and its test processes.
func suiteProcesses(k8sDir string) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.HasPrefix(exe, k8sDir+"/") {
			b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			args := strings.Fields(strings.ReplaceAll(string(b), "\x00", " "))
			if len(args) > 3 {
				args = args[:3]
			}
			out[pid] = strings.Join(args, " ")
		}
	}
	return out
}

// teardown runs after the suite, whatever happened. The suite runs with
// --stop-services=false, so its kubelet and its services process (etcd,
// the apiserver, the namespace controller) outlive it: the suite deletes
// its namespaces without waiting, and it is the kubelet that then stops
// and removes their pods through berthd. Once berthd has no pod left (or
// after podsGoneTimeout), the kubelet and the services are stopped;
// kubelet's own cgroups are removed once empty; then test/launch checks berthd's side (pods, containers,
// monitors, mounts, veths, cgroups below the parent, IPs) and stops it;
// then the kubelet's directories. Anything left fails the run.
func teardown(d *launch.Daemon, h *host, tl tools) error {
	var left []string
	// Only a running kubelet removes pods (an interrupted run stopped it).
	if d.Runtime != nil && len(suiteProcesses(tl.k8s)) > 0 {
		t0 := time.Now()
		n := waitPodsGone(d, podsGoneTimeout)
		fmt.Printf("berthd had %d pod(s) left %s after the suite\n", n, time.Since(t0).Round(time.Second))
	}
	left = append(left, stopSuiteProcesses(tl.k8s)...)
	left = append(left, removeKubeletCgroups()...)
	for _, l := range left {
		fmt.Printf("LEFT BEHIND: %s\n", l)
	}
	err := d.Teardown()
	for _, l := range h.release(nil) {
		left = append(left, l)
		fmt.Printf("LEFT BEHIND: %s\n", l)
	}
	if len(left) > 0 {
		err = errors.Join(fmt.Errorf("%d thing(s) of the suite left behind", len(left)), err)
	}
	return err
}

// podsGoneTimeout bounds the wait for the kubelet to remove the last
// namespaces' pods: their grace periods (30s by default) plus the
// kubelet's garbage collection, which removes a deleted pod's sandbox
// within a minute.
const podsGoneTimeout = 4 * time.Minute

// waitPodsGone waits until berthd lists no pod sandbox and returns how
// many it still had when it stopped waiting.
func waitPodsGone(d *launch.Daemon, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ps, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		cancel()
		n := -1
		if err == nil {
			n = len(ps.Items)
		}
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(2 * time.Second)
	}
}

// stopSuiteProcesses stops the kubelet and the services process with
// SIGTERM; one still there 30s later is killed and named as left behind.
func stopSuiteProcesses(k8sDir string) []string {
	procs := suiteProcesses(k8sDir)
	for pid := range procs {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	for deadline := time.Now().Add(30 * time.Second); len(procs) > 0 && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		procs = suiteProcesses(k8sDir)
	}
	var left []string
	for pid, cmd := range procs {
		left = append(left, fmt.Sprintf("process %d (%s) still running 30s after SIGTERM", pid, cmd))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if len(procs) > 0 {
		time.Sleep(time.Second)
	}
	return left
}

// removeKubeletCgroups checks the kubelet's cgroups (/kubepods, its QoS
// classes and its pods, in every hierarchy) once it has stopped: they
// are its own, left on any node when it stops, and are removed when
// empty, deepest first. A cgroup below them that is not a pod's nor a
// QoS class's (a container's, berthd's to remove) or one that holds a
// process is left behind.
func removeKubeletCgroups() []string {
	var left []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, r := range roots {
		base := filepath.Join(r, "kubepods")
		var dirs []string
		filepath.WalkDir(base, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			name := filepath.Base(dirs[i])
			kubelets := strings.HasPrefix(name, "pod") || name == "kubepods" || name == "burstable" || name == "besteffort"
			if !kubelets {
				left = append(left, "cgroup "+dirs[i])
				continue
			}
			if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
				left = append(left, fmt.Sprintf("cgroup %s: %v", dirs[i], err))
			}
		}
	}
	return left
}
