package ingest

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/sysmonstm/sysmonstm/internal/live"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// Bounds of a process snapshot's strings, bytes. Longer strings are cut at
// a character boundary.
const (
	maxProcessName    = 64
	maxProcessUser    = 64
	maxProcessCommand = 256
	maxProcessState   = 8
)

// processSnapshot validates a top-process snapshot from an agent: at most
// live.MaxProcesses entries and a timestamp within the accepted window
// (else the whole snapshot is rejected); strings cut to their bound with
// invalid UTF-8 replaced; a non-finite or negative CPU share becomes 0.
func (s *Server) processSnapshot(ps *pb.ProcessSnapshot) (int64, []live.Process, error) {
	in := ps.GetProcesses()
	if len(in) > live.MaxProcesses {
		return 0, nil, fmt.Errorf("%d processes, limit %d", len(in), live.MaxProcesses)
	}
	ts := ps.GetTimestampMs()
	now := s.opts.Now().UnixMilli()
	if ts > now+s.opts.MaxFuture.Milliseconds() {
		return 0, nil, fmt.Errorf("timestamp %d is more than %s in the future", ts, s.opts.MaxFuture)
	}
	if ts < now-s.opts.MaxAge.Milliseconds() {
		return 0, nil, fmt.Errorf("timestamp %d is older than %s", ts, s.opts.MaxAge)
	}
	out := make([]live.Process, len(in))
	for i, p := range in {
		cpu := p.GetCpuPercent()
		if math.IsNaN(cpu) || math.IsInf(cpu, 0) || cpu < 0 {
			cpu = 0
		}
		out[i] = live.Process{
			PID:        p.GetPid(),
			Name:       cleanString(p.GetName(), maxProcessName),
			User:       cleanString(p.GetUser(), maxProcessUser),
			Command:    cleanString(p.GetCommand(), maxProcessCommand),
			CPUPercent: cpu,
			RSSBytes:   p.GetRssBytes(),
			State:      cleanString(p.GetState(), maxProcessState),
		}
	}
	return ts, out, nil
}

// cleanString returns s with invalid UTF-8 replaced by U+FFFD, cut to at
// most limit bytes at a character boundary.
func cleanString(s string, limit int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
