package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// AdapterConfig is one entry of adapters:, a named chat adapter of a type:
//
//	adapters:
//	  - {name: console, type: shell, room: general, user: alice}
//	  - {name: slack, type: slack, bot_token_env: SLACK_BOT_TOKEN}
//
// The config package knows no adapter type: it checks name and type and
// keeps the entry's other keys, which the type's factory decodes with Decode.
type AdapterConfig struct {
	// Name names the adapter in message refs, role users ("slack:U024BE7LH"),
	// policies' rooms ("slack:deployment") and notify rooms. Required,
	// unique; a lowercase letter, then lowercase letters, digits and '-'.
	Name string
	// Type is the adapter type ("shell", "slack", "mattermost", "webhook"),
	// which cmd/chima maps to a factory. Required.
	Type string

	// options holds every key of the entry but name and type (a mapping
	// node; nil when there are none).
	options *yaml.Node
	// key is the entry's key path ("adapters[1]"), file the config file.
	key, file string
	// line is the entry's line in the file (0 for an entry built in code).
	line int
}

// NewAdapterConfig returns an entry as if read from a file: options is the
// YAML of its other keys ("room: general"), which may be empty. For tests and
// for configs built in code.
func NewAdapterConfig(name, typ, options string) (AdapterConfig, error) {
	a := AdapterConfig{Name: name, Type: typ, key: "adapters[" + name + "]"}
	if strings.TrimSpace(options) == "" {
		return a, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(options), &doc); err != nil {
		return a, fmt.Errorf("adapter %s options: %w", name, err)
	}
	if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		a.options = doc.Content[0]
		return a, nil
	}
	return a, fmt.Errorf("adapter %s options: not a mapping", name)
}

// Key is the entry's key path in the file, "adapters[1]", for problems about
// it.
func (a AdapterConfig) Key() string { return a.key }

// Problem returns a problem about the entry's option key ("" for the entry
// as a whole), with the file and line it is at.
func (a AdapterConfig) Problem(key, msg string) Problem {
	p := Problem{File: a.file, Line: a.line, Key: a.key, Msg: msg}
	if key != "" {
		p.Key = joinKey(a.key, key)
		if k, _ := a.option(key); k != nil {
			p.Line = k.Line
		}
	}
	return p
}

// OptionWithValue returns the option key whose value is the string value
// ("bot_token_env" for "SLACK_BOT_TOKEN"), or "" when none has it. Factories
// are given a secret's variable name, not the key that named it; this finds
// the key for the problem.
func (a AdapterConfig) OptionWithValue(value string) string {
	if a.options == nil {
		return ""
	}
	var found string
	var walk func(n *yaml.Node, path string, depth int)
	walk = func(n *yaml.Node, path string, depth int) {
		if found != "" || n == nil || depth > 8 {
			return
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := joinKey(path, k.Value)
				if v.Kind == yaml.ScalarNode && v.Value == value {
					found = p
					return
				}
				walk(v, p, depth+1)
			}
		case yaml.SequenceNode:
			for i, v := range n.Content {
				walk(v, indexKey(path, i), depth+1)
			}
		}
	}
	walk(a.options, "", 0)
	return found
}

// option returns the key and value nodes of a top-level option.
func (a AdapterConfig) option(key string) (k, v *yaml.Node) {
	if a.options == nil {
		return nil, nil
	}
	top := key
	if i := strings.IndexAny(key, ".["); i > 0 {
		top = key[:i]
	}
	for i := 0; i+1 < len(a.options.Content); i += 2 {
		if a.options.Content[i].Value == top {
			return a.options.Content[i], a.options.Content[i+1]
		}
	}
	return nil, nil
}

// Decode decodes the entry's options (every key but name and type) into v,
// a non-nil pointer to a struct whose fields have yaml tags, strictly:
// unknown keys and values of the wrong type are problems naming the key
// ("chima.yaml:7: adapters[1].romo: unknown key (did you mean "room"?)").
// It returns nil or a *ValidationError listing every problem. Keys absent
// from the entry leave v's fields as they were, so set defaults first.
func (a AdapterConfig) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: adapter %s: Decode needs a pointer to a struct, got %T", a.Name, v)
	}
	if a.options == nil {
		return nil
	}
	d := &decoder{meta: newMeta(a.file), budget: nodeBudget, expanding: map[*yaml.Node]bool{}}
	d.decodeStruct(a.options, a.key, rv.Elem())
	return newValidationError(d.problems)
}

var (
	adapterConfigType = reflect.TypeFor[AdapterConfig]()
	adapterListType   = reflect.TypeFor[[]AdapterConfig]()
)

// decodeAdapter decodes one adapters: entry: name and type as strings, the
// other keys kept for the factory.
func (d *decoder) decodeAdapter(n *yaml.Node, key string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "expected a mapping with a name and a type, like {name: console, type: shell}, got %s", describe(n))
		return
	}
	a := AdapterConfig{key: key, file: d.meta.file, line: n.Line}
	opts := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for _, p := range d.pairs(n, key) {
		fk := joinKey(key, p.k.Value)
		switch p.k.Value {
		case "name", "type":
			d.meta.lines[fk] = p.k.Line
			var s string
			d.decode(p.v, fk, reflect.ValueOf(&s).Elem())
			if p.k.Value == "name" {
				a.Name = s
			} else {
				a.Type = s
			}
		default:
			opts.Content = append(opts.Content, p.k, p.v)
		}
	}
	if len(opts.Content) > 0 {
		a.options = opts
	}
	v.Set(reflect.ValueOf(a))
}

// oldAdapters explains that adapters: is a list now, with the line to write
// instead of the mapping n of the old form ({shell: {enabled: true, …}}).
func (d *decoder) oldAdapters(n *yaml.Node, key string) {
	list := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], d.resolve(n.Content[i+1], key)
		entry := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		scalar := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }
		entry.Content = append(entry.Content, scalar("name"), scalar(k.Value), scalar("type"), scalar(k.Value))
		enabled := true
		if v != nil && v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				ok, ov := v.Content[j], v.Content[j+1]
				if ok.Value == "enabled" {
					_ = ov.Decode(&enabled)
					continue
				}
				entry.Content = append(entry.Content, scalar(ok.Value), flowCopy(ov, 0))
			}
		}
		if enabled {
			list.Content = append(list.Content, entry)
		}
	}
	if len(list.Content) == 0 {
		list.Content = append(list.Content, &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "name"}, {Kind: yaml.ScalarNode, Value: "console"},
			{Kind: yaml.ScalarNode, Value: "type"}, {Kind: yaml.ScalarNode, Value: "shell"},
		}})
	}
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "adapters"}, list}}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	line := "adapters: [{name: console, type: shell}]"
	if err := errors.Join(enc.Encode(doc), enc.Close()); err == nil {
		line = strings.TrimSpace(b.String())
	}
	d.fail(n, key, "is a list now, one entry per adapter with a name and a type (the old form adapters: {shell: {enabled: true}} is gone); write instead: %s", line)
}

// flowCopy copies n for a one-line suggestion: flow style, no comments.
func flowCopy(n *yaml.Node, depth int) *yaml.Node {
	c := &yaml.Node{Kind: n.Kind, Tag: n.Tag, Value: n.Value, Style: n.Style &^ (yaml.LiteralStyle | yaml.FoldedStyle)}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return flowCopy(n.Alias, depth+1)
	}
	if n.Kind != yaml.ScalarNode {
		c.Style = yaml.FlowStyle
	}
	if depth < 8 {
		for _, ch := range n.Content {
			c.Content = append(c.Content, flowCopy(ch, depth+1))
		}
	}
	return c
}
