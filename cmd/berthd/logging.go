package main

import (
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/berth-cri/berth/config"
	"github.com/berth-cri/berth/server"
)

func setupLogging(c config.LogConfig) error {
	level, err := logrus.ParseLevel(c.Level)
	if err != nil {
		return err
	}
	logrus.SetLevel(level)
	logrus.SetOutput(os.Stderr)
	if c.Format == "json" {
		logrus.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	} else {
		logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: time.RFC3339Nano})
	}
	return nil
}

// reload re-reads the configuration on SIGHUP. Only the log keys take
// effect at once; others need a restart, and reload says which changed.
// A bad file is logged and the running config kept.
func reload(f *flags, srv *server.Server) {
	next, err := config.Load(f.configPath, f.override)
	if err != nil {
		logrus.Errorf("reload: keeping the running config: %v", err)
		return
	}
	cur := srv.Config()
	if next.Log != cur.Log {
		// Said at warn, before the switch, so it shows at either level.
		logrus.Warnf("reload: log level %s -> %s, format %s -> %s", cur.Log.Level, next.Log.Level, cur.Log.Format, next.Log.Format)
		if err := setupLogging(next.Log); err != nil {
			logrus.Errorf("reload: %v", err)
			return
		}
	}
	// The rest is kept as it is until a restart: the areas read their
	// settings at start-up. Say so, rather than pretend they changed.
	merged := *cur
	merged.Log = next.Log
	b, _ := (&merged).Encode()
	c, _ := next.Encode()
	if string(b) != string(c) {
		logrus.Warn("reload: keys other than log.* changed; they take effect on restart")
	}
	srv.SetConfig(&merged)
	logrus.Warnf("reload: done from %s", f.configPath)
}
