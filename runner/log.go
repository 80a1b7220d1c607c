package runner

import (
	"errors"
	"os"

	"github.com/sirupsen/logrus"
)

// configureLogging applies --debug, --log and --log-format the way runc does,
// since monitors parse the result: text lines on stderr by default, and with
// --log-format json one {"level","msg","time"} object per line. libcontainer
// forwards the container init's own log lines into the same logger.
func configureLogging(global *flagSet) error {
	if global.Bool("debug") {
		logrus.SetLevel(logrus.DebugLevel)
	}
	switch f := global.String("log-format"); f {
	case "", "text":
	case "json":
		logrus.SetFormatter(new(logrus.JSONFormatter))
	default:
		return errors.New("invalid log-format: " + f)
	}
	if file := global.String("log"); file != "" {
		f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return err
		}
		logrus.SetOutput(f)
	}
	return nil
}

func logsToStderr() bool {
	l, ok := logrus.StandardLogger().Out.(*os.File)
	return ok && l.Fd() == os.Stderr.Fd()
}
