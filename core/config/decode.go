package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/chimaops/chima/sdk/suggest"
)

// The decoder walks the yaml.Node tree against the Config struct itself,
// rather than calling yaml's Decode with KnownFields: Decode stops at the
// first unknown key, while a person fixing a config wants every problem at
// once, each with its line and key path.

// nodeBudget bounds the work one document may cause through aliases
// (a "billion laughs" file must fail, not hang).
const nodeBudget = 1 << 20

var durationType = reflect.TypeFor[time.Duration]()

// unknownKeyExplainer lets a struct explain an unknown key better than
// "unknown key".
type unknownKeyExplainer interface {
	explainUnknownKey(name string) string
}

type decoder struct {
	meta     *meta
	problems []Problem
	budget   int
	// expanding holds the alias and mapping nodes being expanded, to refuse
	// a node that contains itself.
	expanding map[*yaml.Node]bool
}

// maxDecodeProblems caps the problems one document can produce.
const maxDecodeProblems = 1000

func (d *decoder) add(line int, key, format string, args ...any) {
	switch {
	case len(d.problems) > maxDecodeProblems:
		return
	case len(d.problems) == maxDecodeProblems:
		d.problems = append(d.problems, Problem{File: d.meta.file, Line: line, Msg: "too many problems; stopping here"})
		return
	}
	d.problems = append(d.problems, Problem{File: d.meta.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// fail reports a value that could not be decoded and marks its key bad so
// that validation does not report the same mistake again.
func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	d.meta.bad[key] = true
	d.add(n.Line, key, format, args...)
}

var yamlErrLine = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// parseDocument decodes data into c, returning the problems found. When
// fatal, the file could not be read as one mapping (a YAML syntax error, two
// documents, a list at the top), so checking it further would only add noise.
//
// Line numbers of YAML syntax errors are yaml.v3's, which for some errors
// point at the line before the mistake.
func parseDocument(data []byte, c *Config, m *meta) (problems []Problem, fatal bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return []Problem{syntaxProblem(m.file, err)}, true
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return []Problem{syntaxProblem(m.file, err)}, true
	default:
		return []Problem{{File: m.file, Line: extra.Line, Msg: "only one YAML document is allowed (remove the second ---)"}}, true
	}
	d := &decoder{meta: m, budget: nodeBudget, expanding: map[*yaml.Node]bool{}}
	n := &root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		// an empty file: validation reports every required key missing
		return nil, false
	}
	if resolved := d.resolve(n, ""); resolved == nil || resolved.Kind != yaml.MappingNode {
		d.add(n.Line, "", "expected a mapping of keys (bot:, plugins:, …) at the top level, got %s", describe(n))
		return d.problems, true
	}
	d.decode(n, "", reflect.ValueOf(c).Elem())
	return d.problems, false
}

func syntaxProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return Problem{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// resolve follows aliases to the node they name; nil if the alias refers to
// itself (reported) or the budget is spent.
func (d *decoder) resolve(n *yaml.Node, key string) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		if !d.spend(n, key) {
			return nil
		}
		n = n.Alias
	}
	return n
}

// spend counts one node of work; false once the budget is spent.
func (d *decoder) spend(n *yaml.Node, key string) bool {
	d.budget--
	if d.budget == -1 {
		d.fail(n, key, "document too large or too many aliases expanded (limit %d nodes)", nodeBudget)
	}
	return d.budget >= 0
}

func (d *decoder) decode(n *yaml.Node, key string, v reflect.Value) {
	if !d.spend(n, key) {
		return
	}
	if n.Kind == yaml.AliasNode {
		if d.expanding[n] {
			d.fail(n, key, "alias *%s refers to a value that contains it", n.Value)
			return
		}
		d.expanding[n] = true
		defer delete(d.expanding, n)
		d.decode(n.Alias, key, v)
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		d.meta.null[key] = true
		return // leave the zero value: the key counts as absent
	}
	switch v.Type() {
	case durationType:
		d.decodeDuration(n, key, v)
		return
	case adapterConfigType:
		d.decodeAdapter(n, key, v)
		return
	case adapterListType:
		if n.Kind == yaml.MappingNode {
			d.oldAdapters(n, key)
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, key, v.Elem())
	case reflect.Struct:
		d.decodeStruct(n, key, v)
	case reflect.Map:
		d.decodeMap(n, key, v)
	case reflect.Slice:
		d.decodeSlice(n, key, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, key, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.fail(n, key, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		var i int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			d.fail(n, key, "expected a whole number, got %s", describe(n))
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, key, "number %s is too large", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Interface:
		if x := d.decodeAny(n, key); x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		// A field type the walker does not know (none today): let yaml decode it.
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n, key, "cannot read %s as %s", describe(n), v.Type())
		}
	}
}

// decodeAny reads a free-form value (a plugin's settings) in the shapes of
// a JSON document decoded with UseNumber: map[string]any, []any, string,
// json.Number, bool, or nil for null. Aliases and merge keys are expanded
// as everywhere else, and count against the same budget. A number keeps
// the text it was written with when that is JSON ("1.10" stays 1.10).
func (d *decoder) decodeAny(n *yaml.Node, key string) any {
	if !d.spend(n, key) {
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		if d.expanding[n] {
			d.fail(n, key, "alias *%s refers to a value that contains it", n.Value)
			return nil
		}
		d.expanding[n] = true
		defer delete(d.expanding, n)
		return d.decodeAny(n.Alias, key)
	case yaml.MappingNode:
		m := map[string]any{}
		for _, p := range d.pairs(n, key) {
			fk := joinKey(key, p.k.Value)
			d.meta.lines[fk] = p.k.Line
			m[p.k.Value] = d.decodeAny(p.v, fk)
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			ik := indexKey(key, i)
			d.meta.lines[ik] = item.Line
			l = append(l, d.decodeAny(item, ik))
		}
		return l
	case yaml.ScalarNode:
		return scalarValue(n)
	}
	return nil
}

// scalarValue is a YAML scalar as JSON would hold it.
func scalarValue(n *yaml.Node) any {
	switch n.Tag {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int", "!!float":
		if json.Valid([]byte(n.Value)) {
			return json.Number(n.Value)
		}
		var i int64
		if n.Decode(&i) == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		var f float64
		if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	return n.Value
}

func (d *decoder) decodeDuration(n *yaml.Node, key string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, key, "expected a duration like 30s or 1m, got %s", describe(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		if _, aerr := strconv.ParseFloat(n.Value, 64); aerr == nil {
			d.fail(n, key, "duration %s needs a unit, like %ss or %sm", n.Value, n.Value, n.Value)
			return
		}
		d.fail(n, key, "invalid duration %q (write it like 30s, 5m or 1h30m)", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

type pair struct{ k, v *yaml.Node }

// pairs returns the key/value pairs of a mapping, with YAML merge keys
// ("<<: *defaults") expanded: explicit keys win over merged ones, and earlier
// merges over later ones. Duplicate explicit keys and non-string keys are
// reported and dropped.
func (d *decoder) pairs(n *yaml.Node, key string) []pair {
	if d.expanding[n] {
		d.fail(n, key, "merge refers to a mapping that contains it")
		return nil
	}
	d.expanding[n] = true
	defer delete(d.expanding, n)

	var out []pair
	seen := map[string]int{} // key → line of first occurrence
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !d.spend(k, key) {
			return out
		}
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if rk := d.resolve(k, key); rk == nil || rk.Kind != yaml.ScalarNode {
			d.add(k.Line, key, "keys must be plain strings, got %s", describe(k))
			continue
		} else {
			k = rk
		}
		if first, dup := seen[k.Value]; dup {
			d.add(k.Line, joinKey(key, k.Value), "duplicate key (first set at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, v})
	}
	for _, m := range merges {
		m = d.resolve(m, key)
		if m == nil {
			continue
		}
		var srcs []*yaml.Node
		switch m.Kind {
		case yaml.MappingNode:
			srcs = []*yaml.Node{m}
		case yaml.SequenceNode:
			for _, s := range m.Content {
				srcs = append(srcs, d.resolve(s, key))
			}
		}
		for _, s := range srcs {
			if s == nil { // budget spent, already reported
				return out
			}
			if s.Kind != yaml.MappingNode {
				d.add(m.Line, key, "<< merge needs a mapping or a list of mappings, got %s", describe(m))
				break
			}
			for _, p := range d.pairs(s, key) {
				if _, dup := seen[p.k.Value]; dup {
					continue
				}
				seen[p.k.Value] = p.k.Line
				out = append(out, p)
			}
		}
	}
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, key string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "expected a mapping, got %s", describe(n))
		return
	}
	fields, names := structFields(v.Type())
	pairs := d.pairs(n, key)
	present := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		present[p.k.Value] = true
	}
	for _, p := range pairs {
		name := p.k.Value
		fk := joinKey(key, name)
		idx, ok := fields[name]
		if !ok {
			msg := "unknown key"
			if e, ok := v.Addr().Interface().(unknownKeyExplainer); ok {
				msg = e.explainUnknownKey(name)
			}
			if s := suggest.Closest(name, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
				// The typo is the one mistake: do not also report the key
				// it was meant to be as missing.
				if !present[s] {
					d.meta.bad[joinKey(key, s)] = true
				}
			}
			d.add(p.k.Line, fk, "%s", msg)
			continue
		}
		d.meta.lines[fk] = p.k.Line
		d.decode(p.v, fk, v.Field(idx))
	}
}

// structFields maps the yaml names of t's fields to their index.
func structFields(t reflect.Type) (map[string]int, []string) {
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = i
		names = append(names, name)
	}
	return fields, names
}

func (d *decoder) decodeMap(n *yaml.Node, key string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "expected a mapping, got %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, p := range d.pairs(n, key) {
		fk := joinKey(key, p.k.Value)
		d.meta.lines[fk] = p.k.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(p.v, fk, elem)
		v.SetMapIndex(reflect.ValueOf(p.k.Value).Convert(v.Type().Key()), elem)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, key string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, key, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		ik := indexKey(key, i)
		d.meta.lines[ik] = item.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(item, ik, elem)
		s = reflect.Append(s, elem)
	}
	v.Set(s)
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.AliasNode && n.Alias != nil && n.Alias.Kind != yaml.AliasNode {
		return describe(n.Alias)
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return strconv.Quote(v)
	}
	return "nothing"
}
