package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/sysmonstm/sysmonstm/internal/config"
)

// newFlagSet returns a flag set with the flags every command shares.
func newFlagSet(name, summary string, stderr io.Writer) (*flag.FlagSet, *logFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sysmonstm %s [flags]\n\n%s\n\nFlags (each also settable as %s<FLAG> or in --config):\n", name, summary, config.EnvPrefix)
		fs.PrintDefaults()
	}
	fs.String("config", "", "YAML `FILE` of settings (keys are flag names)")
	lf := &logFlags{}
	fs.StringVar(&lf.level, "log-level", "info", "log `LEVEL`: debug, info, warn, error")
	fs.StringVar(&lf.format, "log-format", "auto", "log `FORMAT`: text, json, or auto (text on a terminal, else JSON)")
	return fs, lf
}

type logFlags struct{ level, format string }

// logger builds the command's logger from its flags.
func (lf *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(lf.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", lf.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	jsonOpts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationString}
	switch strings.ToLower(lf.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, jsonOpts)), nil
	case "auto", "":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, jsonOpts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text, json or auto", lf.format)
}

// durationString writes a duration as Go's duration string ("1.5s",
// "10m0s"), as text logs do and flags accept, instead of the JSON handler's
// integer nanoseconds.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// parse resolves flags, environment and config file, then builds the logger.
func parse(fs *flag.FlagSet, lf *logFlags, args []string, stderr io.Writer) (*slog.Logger, error) {
	if err := config.Parse(fs, args, os.Getenv); err != nil {
		return nil, err
	}
	return lf.logger(stderr)
}
