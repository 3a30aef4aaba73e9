package collect

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// maxTextfileBytes bounds one textfile.
const maxTextfileBytes = 4 << 20

// Textfile reports the samples of the *.prom files of a directory
// (Prometheus text format, like node_exporter's textfile collector), plus
// textfile_scrape_error{file} (1 when the file was rejected) and
// textfile_mtime_seconds{file}. A file is parsed again only when its
// modification time or size changes; a rejected file is logged once per
// change and contributes no samples, the other files are kept.
type Textfile struct {
	dir string
	log *slog.Logger

	dirMod time.Time               // mtime of dir at the latest listing
	files  map[string]*textfileSrc // by base name
	out    []metric.Sample         // merged samples of every file; rebuilt on change
	dirty  bool
}

// textfileSrc is one file's cached parse.
type textfileSrc struct {
	mod     time.Time
	size    int64
	samples []metric.Sample
	err     error
	dupErr  bool // a series also came from an earlier file
	errL    metric.Labels
}

// NewTextfile returns the textfile collector for dir.
func NewTextfile(dir string, opts Options) *Textfile {
	opts = opts.withDefaults()
	return &Textfile{dir: dir, log: opts.Logger, files: map[string]*textfileSrc{}}
}

// Name implements Collector.
func (*Textfile) Name() string { return "textfile" }

// Collect implements Collector. Samples are appended with label slices
// shared between ticks: consumers must not modify them.
func (c *Textfile) Collect(_ context.Context, b *Batch) error {
	st, err := os.Stat(c.dir)
	if err != nil {
		return fmt.Errorf("textfile directory: %w", err)
	}
	if !st.ModTime().Equal(c.dirMod) || c.files == nil {
		if err := c.list(); err != nil {
			return err
		}
		c.dirMod = st.ModTime()
	}
	for name, f := range c.files {
		c.refresh(name, f)
	}
	if c.dirty {
		c.merge()
	}
	b.Samples = append(b.Samples, c.out...)
	return nil
}

// list re-reads the directory's *.prom names.
func (c *Textfile) list() error {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("textfile directory: %w", err)
	}
	keep := map[string]*textfileSrc{}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".prom") || e.IsDir() {
			continue
		}
		if f, ok := c.files[n]; ok {
			keep[n] = f
			continue
		}
		keep[n] = &textfileSrc{errL: metric.Labels{{Name: "file", Value: n}}}
	}
	if len(keep) != len(c.files) {
		c.dirty = true
	}
	c.files = keep
	return nil
}

// refresh re-parses f when it changed.
func (c *Textfile) refresh(name string, f *textfileSrc) {
	path := filepath.Join(c.dir, name)
	st, err := os.Stat(path)
	if err == nil && st.ModTime().Equal(f.mod) && st.Size() == f.size && (f.samples != nil || f.err != nil) {
		return
	}
	c.dirty = true
	f.samples, f.err = nil, nil
	if err != nil {
		f.mod, f.size, f.err = time.Time{}, -1, err
		c.log.Warn("textfile rejected", "file", path, "err", err)
		return
	}
	f.mod, f.size = st.ModTime(), st.Size()
	f.samples, f.err = readTextfile(path)
	if f.err != nil {
		c.log.Warn("textfile rejected; its samples are left out until it changes", "file", path, "err", f.err)
		f.samples = nil
	} else if f.samples == nil {
		f.samples = []metric.Sample{}
	}
}

func readTextfile(path string) ([]metric.Sample, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxTextfileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxTextfileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxTextfileBytes)
	}
	return parseTextfile(data)
}

// merge rebuilds the output in file name order; a series already produced
// by an earlier file rejects the later file.
func (c *Textfile) merge() {
	c.dirty = false
	names := make([]string, 0, len(c.files))
	for n := range c.files {
		names = append(names, n)
	}
	slices.Sort(names)
	seen := map[string]string{}
	c.out = c.out[:0]
	for _, n := range names {
		f := c.files[n]
		f.dupErr = false
		if f.err == nil {
			for i := range f.samples {
				if prev, ok := seen[f.samples[i].Key()]; ok {
					f.dupErr = true
					c.log.Warn("textfile rejected: series also in an earlier file", "file", filepath.Join(c.dir, n),
						"series", f.samples[i].Name+formatLabels(f.samples[i].Labels), "earlier", prev)
					break
				}
			}
			if !f.dupErr {
				for i := range f.samples {
					seen[f.samples[i].Key()] = n
				}
				c.out = append(c.out, f.samples...)
			}
		}
		failed := 0.0
		if f.err != nil || f.dupErr {
			failed = 1
		}
		c.out = append(c.out, metric.Sample{Name: "textfile_scrape_error", Labels: f.errL, Value: failed})
		if !f.mod.IsZero() {
			c.out = append(c.out, metric.Sample{Name: "textfile_mtime_seconds", Labels: f.errL,
				Value: float64(f.mod.UnixMilli()) / 1000})
		}
	}
}
