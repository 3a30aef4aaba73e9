package wire_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/sysmonstm/sysmonstm/internal/wire"
	"github.com/sysmonstm/sysmonstm/internal/wire/wiretest"
)

// fixtureType is the Go type of each fixture and its "type" member ("" for
// messages without one).
var fixtureType = map[string]struct {
	typ  string
	into func() any
}{
	wiretest.Snapshot:         {wire.TypeSnapshot, func() any { return new(wire.Snapshot) }},
	wiretest.SnapshotSummary:  {wire.TypeSnapshot, func() any { return new(wire.Snapshot) }},
	wiretest.Metrics:          {wire.TypeMetrics, func() any { return new(wire.Metrics) }},
	wiretest.Machine:          {wire.TypeMachine, func() any { return new(wire.MachineEvent) }},
	wiretest.MachineForgotten: {wire.TypeMachine, func() any { return new(wire.MachineEvent) }},
	wiretest.Processes:        {wire.TypeProcesses, func() any { return new(wire.Processes) }},
	wiretest.Summary:          {wire.TypeSummary, func() any { return new(wire.SummaryEvent) }},
	wiretest.Alert:            {wire.TypeAlert, func() any { return new(wire.AlertEvent) }},
	wiretest.Error:            {wire.TypeError, func() any { return new(wire.Error) }},
	wiretest.Subscribe:        {"", func() any { return new(wire.Subscribe) }},
	wiretest.MachineDetail:    {"", func() any { return new(wire.Machine) }},
}

// TestFixturesMatchTypes: every fixture decodes into its wire type with no
// member left over, and the type encodes it back to the same JSON value, so
// the Go types and the bytes the hub sends describe the same format.
func TestFixturesMatchTypes(t *testing.T) {
	if len(fixtureType) != len(wiretest.Names) {
		t.Fatalf("%d fixture types for %d fixtures", len(fixtureType), len(wiretest.Names))
	}
	for _, name := range wiretest.Names {
		t.Run(name, func(t *testing.T) {
			ft, ok := fixtureType[name]
			if !ok {
				t.Fatal("no type for fixture")
			}
			b := wiretest.Read(t, name)
			if !utf8.Valid(b) || bytes.ContainsAny(b, "\n\r") || !json.Valid(b) {
				t.Fatal("fixture is not one line of valid UTF-8 JSON")
			}
			var h wire.Header
			if err := json.Unmarshal(b, &h); err != nil || h.Type != ft.typ {
				t.Fatalf("type %q (%v), want %q", h.Type, err, ft.typ)
			}
			v := ft.into()
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Fatalf("decode into %T: %v", v, err)
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(again, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%T loses or changes members:\n got %s\nwant %s", v, again, b)
			}
		})
	}
}

// TestFixturesCarryTheCases: the fixtures hold what decoders must survive:
// hostile strings, values JSON cannot carry (null), extreme numbers, a
// forgotten machine, every summary member and every optional alert member.
func TestFixturesCarryTheCases(t *testing.T) {
	var m wire.Metrics
	if err := json.Unmarshal(wiretest.Read(t, wiretest.Metrics), &m); err != nil {
		t.Fatal(err)
	}
	var nulls, hostile int
	for _, v := range m.Metrics {
		if v.Value == nil {
			nulls++
		}
		for _, l := range v.Labels {
			if l == "/data "+wiretest.Hostile {
				hostile++
			}
		}
	}
	if nulls != 2 || hostile != 1 || len(m.Metrics) != len(wiretest.Batch()) {
		t.Errorf("metrics fixture: %d values, %d null (want 2), %d hostile labels (want 1)", len(m.Metrics), nulls, hostile)
	}
	var fe wire.MachineEvent
	if err := json.Unmarshal(wiretest.Read(t, wiretest.MachineForgotten), &fe); err != nil || !fe.Forgotten {
		t.Errorf("forgotten fixture: %v, forgotten %v", err, fe.Forgotten)
	}
	var me wire.MachineEvent
	if err := json.Unmarshal(wiretest.Read(t, wiretest.Machine), &me); err != nil || me.Forgotten || me.Machine.Hostname != wiretest.Info().Hostname || me.Machine.Info.MemoryTotalBytes != wiretest.Info().MemoryTotalBytes {
		t.Errorf("machine fixture: %v, %+v", err, me)
	}
	var se wire.SummaryEvent
	if err := json.Unmarshal(wiretest.Read(t, wiretest.Summary), &se); err != nil {
		t.Fatal(err)
	}
	s := se.Summary
	if s.CPU == nil || s.Mem == nil || s.DiskMax == nil || s.Load1 == nil || s.NetRx == nil || s.NetTx == nil || s.Uptime == nil || s.ServicesOK == nil || s.ServicesTotal == nil || s.ServicesFailed == nil {
		t.Errorf("summary fixture leaves a member out: %+v", s)
	}
	var ae wire.AlertEvent
	if err := json.Unmarshal(wiretest.Read(t, wiretest.Alert), &ae); err != nil {
		t.Fatal(err)
	}
	if a := ae.Alert; a.LastValue == nil || a.Clear == nil || a.FiredAt == nil || a.Ack == nil || a.SilencedBy == nil || a.Description != wiretest.Hostile {
		t.Errorf("alert fixture leaves an optional member out: %+v", a)
	}
}

// TestEdgeFixtures: the edge relay's fixtures (shapes in internal/edge,
// tested there) are one line of JSON each and use the wire message names.
func TestEdgeFixtures(t *testing.T) {
	known := map[string]bool{wire.TypeSnapshot: true, wire.TypeMetrics: true, wire.TypeMachine: true, wire.TypeRemove: true, wire.TypeStatus: true}
	for _, name := range wiretest.EdgeNames {
		b := wiretest.Read(t, name)
		var h wire.Header
		if !utf8.Valid(b) || bytes.ContainsAny(b, "\n\r") || json.Unmarshal(b, &h) != nil || !known[h.Type] {
			t.Errorf("%s: not one line of JSON with an edge message type: %.80s", name, b)
		}
	}
}
