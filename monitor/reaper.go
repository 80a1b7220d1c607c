package monitor

import (
	"errors"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reaped is one child's end.
type reaped struct {
	status syscall.WaitStatus
	at     time.Time
}

// reaper is the monitor's only caller of wait: as child subreaper the
// monitor inherits every orphan of the container (runc's intermediate
// processes, a host-pid-namespace container's daemons, exec sessions) and
// must reap them all, while still learning the status of the few pids it
// cares about. os/exec cannot be used beside it, since its Wait would race
// with wait4(-1).
//
// It learns of ends from a goroutine blocked in waitid rather than from
// SIGCHLD: os/signal's Notify costs every monitor a thread locked to its
// signal-mask goroutine plus a template thread, about 150 KiB (see the
// README's monitor memory section); the blocked waitid holds one thread.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan reaped
	// early keeps the statuses of pids nobody waits for yet, until the
	// container's pid is known (its init may die before the pid file is
	// read).
	early     map[int]reaped
	keepEarly bool
	// holds counts the execs being started (see hold): while one is,
	// early statuses are kept too, since the exec's process becomes the
	// monitor's child (and may end) before its pid file is read.
	holds int
	// forked wakes the waiting goroutine when it found no child at all
	// (ECHILD) and a child has been forked since.
	forked chan struct{}
}

// startReaper makes the process a child subreaper and starts reaping.
func startReaper() (*reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, wrap(err, "become child subreaper")
	}
	r := &reaper{waiters: map[int]chan reaped{}, early: map[int]reaped{}, keepEarly: true, forked: make(chan struct{}, 1)}
	r.reapAll()
	go r.watch()
	return r, nil
}

// watch waits, in waitid, until some child has ended, and has reapAll
// reap it. WNOWAIT leaves the child a zombie, so its pid stays its own
// until reapAll, which holds the lock that signal takes: a pid the
// monitor signals is never one the kernel could have reused.
func (r *reaper) watch() {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOWAIT, nil)
		switch err {
		case nil:
			r.reapAll()
		case unix.EINTR:
		case unix.ECHILD:
			// No children: none can end, and no orphan can come to a
			// monitor without descendants, until the next fork.
			<-r.forked
		default:
			// Not expected (EINVAL would be a bug); do not spin.
			time.Sleep(time.Second)
		}
	}
}

// reapAll reaps every child that has ended.
func (r *reaper) reapAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if !ws.Exited() && !ws.Signaled() {
			continue // stopped or continued, not gone
		}
		rec := reaped{status: ws, at: time.Now()}
		if w, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			w <- rec
		} else if r.keepEarly || r.holds > 0 {
			r.early[pid] = rec
		}
	}
}

// forkExec starts a child. The reaper's lock is held across the fork, so
// the child cannot be reaped before wait registers it.
func (r *reaper) forkExec(argv0 string, argv []string, attr *syscall.ProcAttr) (int, <-chan reaped, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv0, argv, attr)
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan reaped, 1)
	r.waiters[pid] = ch
	select {
	case r.forked <- struct{}{}:
	default:
	}
	return pid, ch, nil
}

// signal sends sig to pid if it is a child still waited for and not yet
// reaped. The reaper's lock is held, so the pid cannot be reaped (and
// then reused by another process) between the check and the kill.
func (r *reaper) signal(pid int, sig syscall.Signal) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiters[pid]; !ok {
		return false
	}
	return syscall.Kill(pid, sig) == nil
}

// wait returns a channel that receives pid's end, also if it was already
// reaped, and stops keeping early statuses (unless an exec is being
// started): from now on only waited-for pids are reported.
func (r *reaper) wait(pid int) <-chan reaped {
	return r.waitSince(pid, time.Time{})
}

// waitSince is wait for a child that began at since or later: a status
// kept from before is another process's, whose pid was reused.
func (r *reaper) waitSince(pid int, since time.Time) <-chan reaped {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan reaped, 1)
	if rec, ok := r.early[pid]; ok && !rec.at.Before(since) {
		delete(r.early, pid)
		ch <- rec
	} else {
		r.waiters[pid] = ch
	}
	r.keepEarly = false
	if r.holds == 0 {
		clear(r.early)
	}
	return ch
}

// hold keeps the statuses of children nobody waits for yet until the
// matching release: an exec started in the running container (execIn)
// learns its process's pid from the runtime's pid file, after the
// process may already have ended.
func (r *reaper) hold() {
	r.mu.Lock()
	r.holds++
	r.mu.Unlock()
}

// release ends a hold; with none left, the kept statuses go.
func (r *reaper) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holds--
	if r.holds == 0 && !r.keepEarly {
		clear(r.early)
	}
}

// signalIfWaiting sends sig to pid if it is a child someone waits for and
// it has not been reaped yet. Holding the lock keeps reapAll from reaping
// it meanwhile, so the pid cannot have been reused.
func (r *reaper) signalIfWaiting(pid int, sig syscall.Signal) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiters[pid]; !ok {
		return false
	}
	return syscall.Kill(pid, sig) == nil
}
