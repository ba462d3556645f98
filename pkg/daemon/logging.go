package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/sirupsen/logrus"

	"github.com/cri-runtime/cri-runtime/pkg/config"
)

// newLogger builds the daemon's logger and routes the logrus output of
// containers/image and containers/storage into it, so the daemon writes one
// log in one format.
func newLogger(cfg *config.Config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("log_level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	if cfg.LogFormat == "json" {
		log = slog.New(slog.NewJSONHandler(w, opts))
	} else {
		log = slog.New(slog.NewTextHandler(w, opts))
	}
	logrus.SetOutput(io.Discard)
	logrus.SetLevel(logrus.WarnLevel) // the libraries' info is chatter for us
	if level <= slog.LevelDebug {
		logrus.SetLevel(logrus.DebugLevel)
	}
	logrus.AddHook(logrusHook{log.With("component", "containers")})
	return log, nil
}

// logrusHook forwards logrus entries to slog.
type logrusHook struct{ log *slog.Logger }

func (logrusHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h logrusHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	case e.Level == logrus.InfoLevel:
		level = slog.LevelInfo
	}
	attrs := make([]any, 0, 2*len(e.Data))
	for k, v := range e.Data {
		attrs = append(attrs, k, v)
	}
	h.log.Log(context.Background(), level, e.Message, attrs...)
	return nil
}
