package main

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

const smapsSample = `00400000-00401000 r--p 00000000 fe:00 10019063                           /usr/bin/berth d
Size:                  4 kB
Rss:                   4 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
00401000-0147a000 r-xp 00001000 fe:00 10019063                           /usr/bin/berth d
Size:              16868 kB
Rss:               15972 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
0257f000-02586000 r--p 0217e000 fe:00 10019063                           /usr/bin/berth d
Size:                 28 kB
Rss:                  28 kB
Anonymous:             8 kB
VmFlags: rd mr mw me ac
02586000-02653000 rw-p 02185000 fe:00 10019063                           /usr/bin/berth d
Size:                816 kB
Anonymous:           208 kB
VmFlags: rd wr mr mw me ac
7f0000000000-7f0000100000 r-xp 00000000 fe:00 42                         /usr/lib/other.so
Size:               1024 kB
Anonymous:             0 kB
7f0000200000-7f0000300000 r--p 00000000 00:00 0 
Size:               1024 kB
Anonymous:             0 kB
`

// Only read-only private mappings of the program itself with no
// copied-on-write page are candidates: the relocated GOT (r--p with
// anonymous pages), data (rw-p), other files and anonymous memory are not.
func TestProgPagesParse(t *testing.T) {
	p := &progPages{exe: "/usr/bin/berth d"}
	got, err := p.parse([]byte(smapsSample))
	if err != nil {
		t.Fatal(err)
	}
	want := []memRange{{0x400000, 0x1000}, {0x401000, 0x147a000 - 0x401000}}
	if len(got) != len(want) {
		t.Fatalf("ranges %#v, want %#v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("range %d: %#x+%#x, want %#x+%#x", i, got[i].start, got[i].len, want[i].start, want[i].len)
		}
	}
	if got, _ := (&progPages{exe: "/usr/bin/berth"}).parse([]byte(smapsSample)); len(got) != 0 {
		t.Errorf("another program's path matched: %#v", got)
	}
}

// programRSS is the resident size of this test binary's read-only
// mappings, in kB.
func programRSS(t *testing.T, exe string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if first, _, _ := strings.Cut(line, " "); !strings.HasSuffix(first, ":") {
			fl := strings.Fields(line)
			in = len(fl) >= 6 && (fl[1] == "r-xp" || fl[1] == "r--p") && strings.HasSuffix(line, " "+exe)
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok && in {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			total += n
		}
	}
	return total
}

// Dropping the program's pages unmaps most of them, and the program
// (this test, its runtime and collector) keeps running on pages faulted
// back in.
func TestProgPagesSettleAndDrop(t *testing.T) {
	p, err := newProgPages()
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := p.ranges(); err != nil || len(rs) == 0 {
		t.Fatalf("no program mappings found for %s: %v", p.exe, err)
	}
	before := programRSS(t, p.exe)
	if err := p.settle(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	if err := p.drop(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	after := programRSS(t, p.exe)
	t.Logf("program pages resident: %d kB before, %d kB after", before, after)
	if after >= before {
		t.Errorf("program pages resident: %d kB before, %d kB after dropping them", before, after)
	}
	// Still runs: parse, format, collect again.
	if _, err := p.ranges(); err != nil {
		t.Fatal(err)
	}
}
