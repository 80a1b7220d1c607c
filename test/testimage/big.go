package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Big builds a busybox image with layers extra layers holding totalBytes
// of random data in all (one file /data/N per layer). Random bytes do
// not compress, so the registry serves about totalBytes. The data comes
// from a seeded generator: the same arguments give the same image.
func Big(name string, totalBytes int64, layers int) (v1.Image, error) {
	if layers < 1 {
		return nil, fmt.Errorf("big image: %d layers", layers)
	}
	img, err := Busybox(Spec{Name: name})
	if err != nil {
		return nil, err
	}
	per := totalBytes / int64(layers)
	for i := range layers {
		b, err := randomTar(fmt.Sprintf("data/%d", i), per, uint64(i)+1)
		if err != nil {
			return nil, err
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(b)), nil
		}, tarball.WithCompressedCaching, tarball.WithCompressionLevel(gzip.BestSpeed))
		if err != nil {
			return nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: fmt.Sprintf("ADD %d random bytes /data/%d", per, i)}})
		if err != nil {
			return nil, err
		}
	}
	return img, nil
}

func randomTar(name string, size int64, seed uint64) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(size) + 4096)
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: epoch}); err != nil {
		return nil, err
	}
	var key [32]byte
	key[0] = byte(seed)
	if _, err := io.CopyN(tw, rand.NewChaCha8(key), size); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
