package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// proc is what the bench needs to know of one process to tell whose it is.
type proc struct {
	pid, ppid int
	exe       string
	comm      string
	cmdline   string
	cgroup    string
}

// mem is a process's resident and proportional set sizes, in KiB.
type mem struct{ rss, pss int }

// readMem reads /proc/PID/smaps_rollup. The pid is one the bench has just
// listed; if it has since exited the read fails and the process is skipped.
func readMem(pid int) (mem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return mem{}, err
	}
	defer f.Close()
	var m mem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "Rss:":
			m.rss = v
		case "Pss:":
			m.pss = v
		}
	}
	return m, sc.Err()
}

// listProcs reads every process, parents before children (by pid is
// enough for the shim-then-pause order the roles need).
func listProcs() []proc {
	ents, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		base := filepath.Join("/proc", e.Name())
		stat, err := os.ReadFile(filepath.Join(base, "stat"))
		if err != nil {
			continue
		}
		p := proc{pid: pid}
		// comm may hold spaces and parentheses: the fields after the last ')'.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
				p.ppid, _ = strconv.Atoi(f[1])
			}
		}
		p.exe, _ = os.Readlink(filepath.Join(base, "exe"))
		c, _ := os.ReadFile(filepath.Join(base, "comm"))
		p.comm = strings.TrimSpace(string(c))
		c, _ = os.ReadFile(filepath.Join(base, "cmdline"))
		p.cmdline = strings.ReplaceAll(string(c), "\x00", " ")
		c, _ = os.ReadFile(filepath.Join(base, "cgroup"))
		p.cgroup = string(c)
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

// roleMem is the memory of all of a runtime's helper processes of one role.
type roleMem struct {
	role  string
	n     int
	total mem
}

func (r roleMem) per() (rss, pss float64) {
	if r.n == 0 {
		return 0, 0
	}
	return float64(r.total.rss) / float64(r.n) / 1024, float64(r.total.pss) / float64(r.n) / 1024
}

// helperMem sums the memory of the runtime's per-pod and per-container
// processes, by role.
func helperMem(r *runtime) []roleMem {
	by := map[string]*roleMem{}
	var order []string
	for _, p := range listProcs() {
		role := r.role(p)
		if role == "" {
			continue
		}
		m, err := readMem(p.pid)
		if err != nil {
			continue
		}
		if by[role] == nil {
			by[role] = &roleMem{role: role}
			order = append(order, role)
		}
		by[role].n++
		by[role].total.rss += m.rss
		by[role].total.pss += m.pss
	}
	sort.Strings(order)
	var out []roleMem
	for _, k := range order {
		out = append(out, *by[k])
	}
	return out
}
