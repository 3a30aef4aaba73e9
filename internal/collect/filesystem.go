package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/diskspace"
	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// FSUsage is what statfs(2) reports about one filesystem, in bytes.
type FSUsage = diskspace.Usage

// Filesystem reports filesystem_size_bytes, filesystem_used_bytes and
// filesystem_usage_percent for every real filesystem in mountinfo.
type Filesystem struct {
	// Statfs returns the usage of the filesystem mounted at path (RootFS
	// already prefixed). It defaults to statfs(2); tests substitute canned
	// results, since statfs cannot be faked with files. It is called from
	// several goroutines at once, one per filesystem.
	Statfs func(path string) (FSUsage, error)

	mountinfo []*procFile // candidates, first readable wins
	rootFS    string
	src       *procFile   // the candidate in use; nil before the first successful read
	watch     *mountWatch // change notifications for src

	raw      []byte          // mountinfo content behind mounts
	mounts   []mount         // real filesystems of raw
	paths    []string        // statfs path of each mount
	labels   []metric.Labels // series labels of each mount, shared by its samples
	usage    []fsResult      // scratch of Collect, one per mount
	answered []bool          // scratch of Collect, one per mount
	all      []mount         // parse scratch

	mu       sync.Mutex      // protects inflight
	inflight map[string]bool // statfs paths whose call has not returned
}

// NewFilesystem returns the filesystem usage collector. It reads
// ProcPath/self/mountinfo, or ProcPath/1/mountinfo (the host's mount
// namespace when the agent runs in a container with the host's /proc) first
// when RootFS is not "/".
func NewFilesystem(opts Options) *Filesystem {
	opts = opts.withDefaults()
	self := newProcFile(filepath.Join(opts.ProcPath, "self", "mountinfo"))
	pid1 := newProcFile(filepath.Join(opts.ProcPath, "1", "mountinfo"))
	c := &Filesystem{Statfs: diskspace.Stat, rootFS: opts.RootFS, inflight: map[string]bool{}}
	if filepath.Clean(opts.RootFS) == "/" {
		c.mountinfo = []*procFile{self, pid1}
	} else {
		c.mountinfo = []*procFile{pid1, self}
	}
	return c
}

// Name implements Collector.
func (*Filesystem) Name() string { return "filesystem" }

type fsResult struct {
	i   int
	u   FSUsage
	err error
}

// Collect implements Collector. Every statfs runs in its own goroutine and
// is waited for until three quarters of ctx's remaining time have passed. A
// mount whose statfs is still blocked (a stale NFS server) is reported as an
// error and skipped on later ticks until the call returns, while the other
// filesystems are still reported.
func (c *Filesystem) Collect(ctx context.Context, b *Batch) error {
	if err := c.refreshMounts(); err != nil {
		return err
	}
	results := make(chan fsResult, len(c.mounts))
	launched := 0
	var errs []error
	c.mu.Lock()
	for i, path := range c.paths {
		if c.inflight[path] {
			errs = append(errs, fmt.Errorf("statfs %s: still blocked from an earlier tick", path))
			continue
		}
		c.inflight[path] = true
		launched++
		go func() {
			u, err := c.Statfs(path)
			c.mu.Lock()
			delete(c.inflight, path)
			c.mu.Unlock()
			results <- fsResult{i: i, u: u, err: err} // buffered: never blocks
		}()
	}
	c.mu.Unlock()

	// Stop waiting at three quarters of the time left, so the samples of
	// the filesystems that did answer reach the Set before its hard cut.
	var giveUp <-chan time.Time
	if dl, ok := ctx.Deadline(); ok && launched > 0 {
		t := time.NewTimer(time.Until(dl) * 3 / 4)
		defer t.Stop()
		giveUp = t.C
	}
	usage, answered := c.usage, c.answered
	clear(answered)
wait:
	for n := 0; n < launched; n++ {
		select {
		case r := <-results:
			usage[r.i], answered[r.i] = r, true
			continue
		case <-giveUp:
		case <-ctx.Done():
		}
		errs = append(errs, fmt.Errorf("statfs: %d of %d filesystems did not answer in time", launched-n, launched))
		break wait
	}
	for i := range c.mounts {
		r := usage[i]
		if !answered[i] {
			continue
		}
		if r.err != nil {
			// A mount that vanished or that we may not see is not a fault.
			if !errors.Is(r.err, fs.ErrNotExist) && !errors.Is(r.err, fs.ErrPermission) {
				errs = append(errs, r.err)
			}
			continue
		}
		addFSUsage(b, c.labels[i], r.u)
	}
	return errors.Join(errs...)
}

// addFSUsage emits one filesystem's series. Used space is Size-Free (root's
// reserved blocks count as used only once they are used); the percentage is
// used/(used+avail) like df, so a full disk for users reads 100%.
func addFSUsage(b *Batch, labels metric.Labels, u FSUsage) {
	used := u.Size - min(u.Free, u.Size)
	pct := 0.0
	if used+u.Avail > 0 {
		pct = round2(clampPercent(float64(used) / float64(used+u.Avail) * 100))
	}
	b.addShared("filesystem_size_bytes", float64(u.Size), labels)
	b.addShared("filesystem_used_bytes", float64(used), labels)
	b.addShared("filesystem_usage_percent", pct, labels)
}

// refreshMounts re-reads mountinfo when the kernel flagged a change, and
// re-parses it only when its content changed. The first tick picks the first
// readable candidate file and keeps it.
func (c *Filesystem) refreshMounts() error {
	var data []byte
	var err error
	if c.src == nil {
		for _, f := range c.mountinfo {
			// Arm the watch before the read, so no change between the two
			// goes unnoticed.
			w := newMountWatch(f.path)
			w.changed(time.Now())
			if data, err = f.read(); err == nil {
				c.src, c.watch = f, w
				break
			}
			w.close()
		}
		if err != nil {
			return err
		}
	} else {
		if !c.watch.changed(time.Now()) {
			return nil
		}
		if data, err = c.src.read(); err != nil {
			return err
		}
	}
	if c.raw != nil && bytes.Equal(data, c.raw) {
		return nil
	}
	c.all, err = parseMountinfo(data, c.all[:0])
	if err != nil {
		return err
	}
	c.mounts = realFilesystems(c.all)
	c.paths = make([]string, len(c.mounts))
	c.labels = make([]metric.Labels, len(c.mounts))
	for i, m := range c.mounts {
		c.paths[i] = filepath.Join(c.rootFS, m.mountpoint)
		c.labels[i] = sortedLabels("device", m.device, "fstype", m.fstype, "mountpoint", m.mountpoint)
	}
	c.usage = make([]fsResult, len(c.mounts))
	c.answered = make([]bool, len(c.mounts))
	c.raw = append(c.raw[:0], data...)
	return nil
}
