package collect

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// netLine is the part of a /proc/net/dev line the network collector uses.
type netLine struct {
	name    []byte // valid until the buffer is reused
	rxBytes uint64
	txBytes uint64
}

// parseNetDev calls fn for every interface line of /proc/net/dev
// ("  eth0: 307431819   16076    0 … 1233463 …"), skipping the two headers.
func parseNetDev(b []byte, fn func(netLine)) error {
	var f [9]uint64
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		colon := bytes.LastIndexByte(line, ':')
		if colon < 0 {
			continue // header lines have '|', not ':'
		}
		name := bytes.TrimSpace(line[:colon])
		if len(name) == 0 || bytes.IndexByte(name, '|') >= 0 {
			continue
		}
		if parseUints(line[colon+1:], f[:]) < len(f) {
			return fmt.Errorf("net/dev %s: %w", name, errSyntax)
		}
		fn(netLine{name: name, rxBytes: f[0], txBytes: f[8]})
	}
	return nil
}

// ignoreInterface leaves out loopback and veth pairs: lo is not network
// traffic worth a chart, and veth devices come and go with every container,
// churning series (the bridge or uplink carries the same bytes).
func ignoreInterface(name string) bool {
	return name == "lo" || strings.HasPrefix(name, "veth")
}

// Network reports network_receive_bytes_per_second and
// network_transmit_bytes_per_second per interface from /proc/net/dev.
type Network struct {
	file   *procFile
	clock  rateClock
	ifaces internedNames // prev: rx bytes, tx bytes
}

// NewNetwork returns the network interface collector.
func NewNetwork(opts Options) *Network {
	opts = opts.withDefaults()
	return &Network{file: newKeptProcFile(filepath.Join(opts.ProcPath, "net", "dev"))}
}

// Name implements Collector.
func (*Network) Name() string { return "network" }

// Collect implements Collector. The first tick, and the first tick of a new
// interface, emit nothing.
func (c *Network) Collect(_ context.Context, b *Batch) error {
	data, err := c.file.read()
	if err != nil {
		return err
	}
	secs := c.clock.advance()
	gen := c.clock.gen
	err = parseNetDev(data, func(l netLine) {
		st := c.ifaces.get(l.name, gen, ignoreInterface)
		if st.skip {
			return
		}
		cur := [3]uint64{l.rxBytes, l.txBytes}
		if st.valid {
			rx, okR := perSecond(st.prev[0], cur[0], secs)
			tx, okT := perSecond(st.prev[1], cur[1], secs)
			if okR && okT {
				b.Add("network_receive_bytes_per_second", rx, "interface", st.name)
				b.Add("network_transmit_bytes_per_second", tx, "interface", st.name)
			}
		}
		st.prev, st.valid = cur, true
	})
	c.ifaces.sweep(gen)
	return err
}
