package oci

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-cri/berth/errdefs"
)

// openInitPIDNamespace opens the PID namespace of a container's init
// without trusting pid to still name it: a pid is only a number, which
// the kernel gives to another process once the init is reaped. It holds
// the process by a pidfd, checks through /proc that it is a child of the
// container's monitor and PID 1 of a namespace of its own, opens its
// namespace, and then checks through the pidfd that the same process is
// still alive: while it is, the pid and every /proc read named it.
func openInitPIDNamespace(pid, monitorPID int) (*os.File, error) {
	if pid <= 0 || monitorPID <= 0 {
		return nil, fmt.Errorf("open PID namespace: no pid recorded (pid %d, monitor %d)", pid, monitorPID)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("open PID namespace: pidfd of %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	ppid, nspid, err := procStatusIDs(pid)
	if err != nil {
		return nil, fmt.Errorf("open PID namespace: %w", err)
	}
	if ppid != monitorPID || len(nspid) < 2 || nspid[len(nspid)-1] != "1" {
		return nil, fmt.Errorf("open PID namespace: process %d is not the container's init (parent %d, monitor %d, NSpid %v)", pid, ppid, monitorPID, nspid)
	}
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	if err != nil {
		return nil, fmt.Errorf("open PID namespace: %w", err)
	}
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		ns.Close()
		return nil, fmt.Errorf("open PID namespace: the container's init %d is gone: %w", pid, err)
	}
	return ns, nil
}

// procStatusIDs reads a process's parent pid and its pid in each PID
// namespace, outermost first.
func procStatusIDs(pid int) (ppid int, nspid []string, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch k {
		case "PPid":
			ppid, _ = strconv.Atoi(strings.TrimSpace(v))
		case "NSpid":
			nspid = strings.Fields(v)
		}
	}
	return ppid, nspid, sc.Err()
}

// OpenPIDNamespace opens the PID namespace of c's init, for a container
// that joins it (PID mode TARGET, ephemeral debug containers). The init
// is held by a pidfd while it is checked and its namespace opened (see
// openInitPIDNamespace), so a pid the kernel gave to another process
// never names another namespace. The caller keeps the file open until
// the runtime has joined it.
func OpenPIDNamespace(c *Container) (*os.File, error) {
	r := c.Record()
	if r.State != StateRunning || r.PID <= 0 {
		return nil, errdefs.FailedPreconditionf("container %s is not running", r.ID)
	}
	ns, err := openInitPIDNamespace(r.PID, r.MonitorPID)
	if err != nil {
		return nil, errdefs.FailedPrecondition(fmt.Errorf("container %s: %w", r.ID, err))
	}
	return ns, nil
}
