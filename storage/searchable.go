package storage

import (
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
)

// closeOpenedLayers takes back the o+x that berthd before issue 23 added
// to the layer directories of user-namespaced containers (so that their
// root could reach merged/), which let every local user into those
// containers' merged/ and diff/. Layer directories are the store's own,
// 0700; berthd now gives such a directory to the pod's root group (0710)
// instead, and a running container's root needs no path to its root
// filesystem any more. The directories above keep search permission.
func (s *Store) closeOpenedLayers() {
	if s.driver != "overlay" {
		return
	}
	dir := filepath.Join(s.store.GraphRoot(), "overlay")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || len(e.Name()) != 64 {
			continue // l/, tempdirs/: not layers
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Lstat(p)
		if err != nil || !st.IsDir() || st.Mode().Perm()&0o001 == 0 {
			continue
		}
		if err := os.Chmod(p, st.Mode().Perm()&^0o007); err != nil {
			logrus.Warnf("storage: close layer directory %s to other users: %v", p, err)
			continue
		}
		logrus.Infof("storage: layer directory %s was open to every user (o+x): closed", p)
	}
}
