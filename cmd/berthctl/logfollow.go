package main

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// followInterval is how often a followed log is read again at its end.
const followInterval = 200 * time.Millisecond

// followLog prints the CRI log file at path through lp. With running nil
// it stops at the end of the file. Otherwise it keeps reading while
// running reports true, and once it reports false reads to the end once
// more: the monitor flushes the log before it records the exit, so that
// last read has every line the container wrote.
func followLog(path string, lp *logPrinter, running func() (bool, error)) error {
	f, err := openLog(path, running)
	if err != nil || f == nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	last := running == nil
	for {
		line, err := r.ReadString('\n')
		if strings.HasSuffix(line, "\n") {
			lp.record(line[:len(line)-1])
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		lp.endOfFile()
		if last {
			return nil
		}
		// A record still being written is read again whole.
		if line != "" {
			if _, err := f.Seek(-int64(len(line)), io.SeekCurrent); err != nil {
				return err
			}
			r.Reset(f)
		}
		alive, err := running()
		if err != nil {
			return err
		}
		if !alive {
			last = true
			continue
		}
		time.Sleep(followInterval)
	}
}

// openLog opens the log, waiting for it while the container runs (the
// monitor may not have made it yet). It is nil, nil when the container
// ended without one.
func openLog(path string, running func() (bool, error)) (*os.File, error) {
	for {
		f, err := os.Open(path)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || running == nil {
			return f, err
		}
		alive, rerr := running()
		if rerr != nil {
			return nil, rerr
		}
		if !alive {
			if f, err = os.Open(path); errors.Is(err, fs.ErrNotExist) {
				return nil, nil
			}
			return f, err
		}
		time.Sleep(followInterval)
	}
}
