package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/push"
)

func runPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlagSet("push", "Send a value to the local agent, which reports it with its next batches:\n  sysmonstm push [flags] NAME=VALUE [LABEL=VALUE …]\nVALUE is a number or `now` (the current Unix time in seconds).", stderr)
	socket := fs.String("socket", push.DefaultSocket(), "the agent's push socket `PATH` (its --push-socket)")
	flags, values := splitPushArgs(args)
	if _, err := parse(fs, lf, flags, stderr); err != nil {
		return err
	}
	m, err := parsePushArgs(values, time.Now())
	if err != nil {
		return err
	}
	if err := push.Push(ctx, *socket, []push.Metric{m}); err != nil {
		return config.Flagged(err)
	}
	fmt.Fprintf(stdout, "pushed %s=%s\n", m.Name, strconv.FormatFloat(m.Value, 'g', -1, 64))
	return nil
}

// splitPushArgs separates flags (every push flag takes a value: --f=v or
// --f v) from the NAME=VALUE arguments, which may come before or after them.
func splitPushArgs(args []string) (flags, values []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return flags, append(values, args[i+1:]...)
		case !strings.HasPrefix(a, "-"):
			values = append(values, a)
		case a == "-h" || a == "-help" || a == "--help" || strings.Contains(a, "="):
			flags = append(flags, a)
		default:
			flags = append(flags, a)
			if i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	return flags, values
}

// parsePushArgs reads NAME=VALUE [LABEL=VALUE …]; the agent validates names.
func parsePushArgs(args []string, now time.Time) (push.Metric, error) {
	if len(args) == 0 {
		return push.Metric{}, errors.New("want NAME=VALUE [LABEL=VALUE …], e.g. backup_last_success_timestamp_seconds=now job=nightly")
	}
	name, val, ok := strings.Cut(args[0], "=")
	if !ok || name == "" {
		return push.Metric{}, fmt.Errorf("%q: want NAME=VALUE", args[0])
	}
	m := push.Metric{Name: name}
	if val == "now" {
		m.Value = float64(now.Unix())
	} else {
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return push.Metric{}, fmt.Errorf("%q: value is not a number (or `now`)", args[0])
		}
		m.Value = v
	}
	for _, a := range args[1:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return push.Metric{}, fmt.Errorf("label %q: want LABEL=VALUE", a)
		}
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		if _, dup := m.Labels[k]; dup {
			return push.Metric{}, fmt.Errorf("label %q given twice", k)
		}
		m.Labels[k] = v
	}
	return m, nil
}
