package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// DefaultDirSizeInterval is how often configured directories are measured.
const DefaultDirSizeInterval = 30 * time.Minute

// dirSizeMaxEntries bounds one directory's walk: a tree with more entries
// is reported as incomplete rather than keeping the disk busy for hours.
const dirSizeMaxEntries = 5_000_000

// DirSpec is one directory whose disk usage is measured, with the service
// it belongs to (e.g. "postgresql.service" → /var/lib/postgresql).
type DirSpec struct {
	Service string
	Path    string
}

// ParseDirSpecs parses "SERVICE=PATH,SERVICE=PATH": each path absolute,
// each service a non-empty name without control characters.
func ParseDirSpecs(s string) ([]DirSpec, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []DirSpec
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		svc, path, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || svc == "" || path == "" {
			return nil, fmt.Errorf("%q: want SERVICE=/absolute/path", part)
		}
		if !filepath.IsAbs(path) {
			return nil, fmt.Errorf("%q: the path must be absolute", part)
		}
		if strings.ContainsFunc(svc+path, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("%q: control characters", part)
		}
		path = filepath.Clean(path)
		if seen[path] {
			return nil, fmt.Errorf("%q: %s is listed twice", part, path)
		}
		seen[path] = true
		out = append(out, DirSpec{Service: svc, Path: path})
	}
	return out, nil
}

// DirSize reports the disk usage of configured directories — the
// per-service `du` of the cm-dashboard seed — measured in the background
// at a slow interval (default 30 min) so a large tree never delays a tick.
// Usage counts allocated blocks like `du -sx`: hard links once, symbolic
// links not followed, other filesystems under the directory not entered.
type DirSize struct {
	specs []DirSpec
	root  string // RootFS prefix
	src   *slowSource[[]metric.Sample]
}

// NewDirSize returns the collector for opts.DirSizes.
func NewDirSize(opts Options) *DirSize {
	opts = opts.withDefaults()
	c := &DirSize{specs: opts.DirSizes, root: opts.RootFS}
	c.src = &slowSource[[]metric.Sample]{interval: opts.DirSizeInterval, timeout: 10 * time.Minute,
		fetch: c.fetch, log: opts.Logger, what: "directory sizes"}
	return c
}

// Name implements Collector.
func (*DirSize) Name() string { return "dirsize" }

// Collect implements Collector.
func (c *DirSize) Collect(_ context.Context, b *Batch) error {
	if ss, ok, _ := c.src.get(); ok {
		b.Samples = append(b.Samples, ss...)
	}
	return nil
}

func (c *DirSize) fetch(ctx context.Context) ([]metric.Sample, error) {
	var b Batch
	for _, d := range c.specs {
		start := time.Now()
		u, err := duDir(ctx, filepath.Join(c.root, d.Path), dirSizeMaxEntries)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		ls := []string{"path", d.Path, "service", d.Service}
		if err != nil && u.entries == 0 {
			// Missing or unreadable: say so with the completeness flag only.
			b.Add("directory_scan_complete", 0, ls...)
			continue
		}
		complete := 1.0
		if err != nil || u.truncated {
			complete = 0
		}
		b.Add("directory_size_bytes", float64(u.bytes), ls...)
		b.Add("directory_files", float64(u.entries), ls...)
		b.Add("directory_scan_seconds", time.Since(start).Seconds(), ls...)
		b.Add("directory_scan_complete", complete, ls...)
	}
	return b.Samples, nil
}

// duResult is one walk's outcome.
type duResult struct {
	bytes     int64 // allocated bytes (st_blocks × 512)
	entries   int64 // files, directories and links seen
	truncated bool  // stopped at the entry limit
	denied    int64 // entries that could not be read
}

// inode identifies a file for hard-link de-duplication.
type inode struct{ dev, ino uint64 }

// duDir walks root without following symbolic links or crossing into other
// filesystems, summing allocated blocks; hard links count once. Unreadable
// subtrees are skipped and counted. It stops at maxEntries (truncated) and
// when ctx ends (returning ctx.Err()).
func duDir(ctx context.Context, root string, maxEntries int64) (duResult, error) {
	var r duResult
	st, err := os.Lstat(root)
	if err != nil {
		return r, err
	}
	rs, ok := st.Sys().(*syscall.Stat_t)
	if !ok || !st.IsDir() {
		return r, fmt.Errorf("%s: not a directory", root)
	}
	dev := uint64(rs.Dev) //nolint:unconvert // Dev is uint64 on amd64, uint32 elsewhere
	seen := map[inode]struct{}{}
	errStop := errors.New("stop")
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			r.denied++
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if r.entries&1023 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if r.entries >= maxEntries {
			r.truncated = true
			return errStop
		}
		info, err := d.Info()
		if err != nil {
			r.denied++
			return nil
		}
		r.entries++
		s, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if uint64(s.Dev) != dev { //nolint:unconvert // see above
			if d.IsDir() {
				return fs.SkipDir // another filesystem mounted inside
			}
			return nil
		}
		if s.Nlink > 1 && !d.IsDir() {
			k := inode{uint64(s.Dev), s.Ino} //nolint:unconvert // see above
			if _, dup := seen[k]; dup {
				return nil
			}
			seen[k] = struct{}{}
		}
		r.bytes += s.Blocks * 512
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return r, err
}
