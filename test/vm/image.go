package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// image is a built VM image: a kernel, its initrd and a raw ext4 disk.
type image struct {
	dir                  string
	kernel, initrd, disk string
	built                bool          // built by this call, not found in the cache
	buildTime            time.Duration // when built
}

func imageMain(args []string) int {
	fs := flag.NewFlagSet("image", flag.ExitOnError)
	cache := fs.String("cache", "build/cache", "cache directory; the image goes to <cache>/vm/<recipe hash>")
	src := fs.String("src", "test/vm", "the recipe's directory (image.sh, guest/)")
	keyOnly := fs.Bool("key", false, "only print the recipe's hash (the cache key)")
	fs.Parse(args)
	if *keyOnly {
		key, err := recipeKey(*src)
		if err != nil {
			fmt.Fprintf(os.Stderr, "vm: %v\n", err)
			return 1
		}
		fmt.Println(key)
		return 0
	}
	img, err := ensureImage(*src, *cache, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vm: %v\n", err)
		return 1
	}
	fmt.Println(img.dir)
	return 0
}

// recipeKey hashes everything the image is made from: image.sh and the
// files of guest/. A change to any of them is a new key, so a new image.
func recipeKey(src string) (string, error) {
	files := []string{filepath.Join(src, "image.sh")}
	guest, err := filepath.Glob(filepath.Join(src, "guest", "*"))
	if err != nil {
		return "", err
	}
	sort.Strings(guest)
	files = append(files, guest...)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// ensureImage returns the cached image for the current recipe, building
// it first when there is none. A lock file serialises builds, so two
// lanes starting together build once; older images are removed.
func ensureImage(src, cache string, log io.Writer) (*image, error) {
	key, err := recipeKey(src)
	if err != nil {
		return nil, fmt.Errorf("image recipe: %w", err)
	}
	base, err := filepath.Abs(filepath.Join(cache, "vm"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	img := &image{dir: filepath.Join(base, key)}
	img.kernel = filepath.Join(img.dir, "vmlinuz")
	img.initrd = filepath.Join(img.dir, "initrd.img")
	img.disk = filepath.Join(img.dir, "disk.img")
	if complete(img) {
		return img, nil
	}

	lock, err := os.OpenFile(filepath.Join(base, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if complete(img) { // another process built it while this one waited
		return img, nil
	}

	// A dot name, so that the go tool's ./... (make lint, run while this
	// builds in .ci/run) skips it and the root image.sh makes beside it,
	// whose mounted /proc it cannot read.
	tmp := filepath.Join(base, "."+key+".tmp")
	os.RemoveAll(tmp)
	fmt.Fprintf(log, "vm: building the image %s (mmdebstrap; minutes)\n", key)
	t0 := time.Now()
	cmd := exec.Command("bash", filepath.Join(src, "image.sh"), tmp)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("build image (%s): %w", filepath.Join(src, "image.sh"), err)
	}
	if err := os.Rename(tmp, img.dir); err != nil {
		return nil, err
	}
	img.built, img.buildTime = true, time.Since(t0)
	fmt.Fprintf(log, "vm: image built in %s\n", img.buildTime.Round(time.Second))
	pruneImages(base, key)
	return img, nil
}

func complete(img *image) bool {
	for _, f := range []string{img.kernel, img.initrd, img.disk} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			return false
		}
	}
	return true
}

// pruneImages removes images of other recipes (each is a few hundred MB).
func pruneImages(base, keep string) {
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() && n != keep && len(strings.TrimPrefix(strings.TrimSuffix(n, ".tmp"), ".")) == len(keep) {
			os.RemoveAll(filepath.Join(base, n))
		}
	}
}
