// Package config resolves a command's settings from, in order of precedence,
// command-line flags, SYSMONSTM_* environment variables, a YAML file and the
// flags' defaults, and reports every invalid or unknown setting by name and
// source.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable that sets a flag.
const EnvPrefix = "SYSMONSTM_"

// EnvName returns the environment variable for a flag: "machine-id" →
// "SYSMONSTM_MACHINE_ID".
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then fills every flag not given on the command
// line from its environment variable (read with getenv), else from the YAML
// file named by the flag "config" (or SYSMONSTM_CONFIG), else leaves its
// default. fs should use flag.ContinueOnError. Keys in the file are flag
// names; lists become comma-separated values and maps k=v pairs.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with --; see --help)", fs.Arg(0))
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })

	fromEnv := map[string]bool{}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if explicit[f.Name] {
			return
		}
		env := EnvName(f.Name)
		v, ok := lookup(getenv, env)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("invalid value %q for %s (flag --%s): %v", v, env, f.Name, err))
			return
		}
		fromEnv[f.Name] = true
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	cf := fs.Lookup("config")
	if cf == nil || cf.Value.String() == "" {
		return nil
	}
	path := cf.Value.String()
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	values, err := parseFile(path, data)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kv := values[k]
		f := fs.Lookup(k)
		if f == nil || k == "config" {
			errs = append(errs, fmt.Errorf("config file %s line %d: unknown key %q (valid keys: %s)", path, kv.line, k, validKeys(fs)))
			continue
		}
		if explicit[k] || fromEnv[k] {
			continue
		}
		if err := fs.Set(k, kv.value); err != nil {
			errs = append(errs, fmt.Errorf("config file %s line %d: invalid value %q for %s: %v", path, kv.line, kv.value, k, err))
		}
	}
	return errors.Join(errs...)
}

// lookup treats an empty variable as unset, as shells make clearing one awkward.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

type fileValue struct {
	value string
	line  int
}

// parseFile reads a flat YAML mapping of flag names to scalars, lists or maps.
func parseFile(path string, data []byte) (map[string]fileValue, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := map[string]fileValue{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return out, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s line %d: top level must be a mapping of setting: value", path, root.Line)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if _, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("config file %s line %d: key %q given twice", path, k.Line, k.Value)
		}
		s, err := nodeString(v)
		if err != nil {
			return nil, fmt.Errorf("config file %s line %d: %s: %v", path, v.Line, k.Value, err)
		}
		out[k.Value] = fileValue{value: s, line: k.Line}
	}
	return out, nil
}

func nodeString(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", errors.New("list items must be plain values")
			}
			parts = append(parts, c.Value)
		}
		return strings.Join(parts, ","), nil
	case yaml.MappingNode:
		parts := make([]string, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return "", errors.New("map values must be plain values")
			}
			parts = append(parts, k.Value+"="+v.Value)
		}
		return strings.Join(parts, ","), nil
	case yaml.AliasNode:
		return nodeString(n.Alias)
	}
	return "", errors.New("unsupported value")
}

func validKeys(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" {
			names = append(names, f.Name)
		}
	})
	return strings.Join(names, ", ")
}

// Bool is a helper for reading SYSMONSTM_* booleans outside flags.
func Bool(s string) (bool, error) { return strconv.ParseBool(s) }
