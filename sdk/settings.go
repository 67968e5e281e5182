package sdk

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/chimaops/chima/sdk/suggest"
)

// Typed settings: Plugin.Settings points at a struct that the SDK fills
// from plugins[].settings of chima.yaml before it calls Configure or
// Validate:
//
//	type settings struct {
//		AppsFile string            `settings:"apps_file,required"`
//		Timeout  time.Duration     `settings:"timeout"` // "5m"
//		Rooms    map[string]string `settings:"rooms"`   // repo → room
//		Targets  []target          `settings:"targets"`
//	}
//
// The decoder is this file's own rather than a general one (mapstructure):
// an operator reads its problems, so each names the key path in the
// settings as chima.yaml writes it ("targets.demo-db.retention.keep_daily",
// "subscriptions[0].room") and says what was expected in YAML's words, not
// Go's ("want an integer, got \"seven\""); every problem is found in one
// pass, one Problem each.

// settingsTag is the struct tag that names a settings key.
const settingsTag = "settings"

// reservedPrefix starts the keys the host adds to every plugin's settings
// (chima_config_dir, chima_base_url, …); a settings struct may declare them
// but need not.
const reservedPrefix = "chima_"

var (
	durationT        = reflect.TypeFor[time.Duration]()
	textUnmarshalerT = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// maxSettingsProblems caps the problems one document produces.
const maxSettingsProblems = 100

// DecodeSettings fills into, a pointer to a struct, from a plugin's
// settings: doc is the settings document as JSON (DescribeRequest's
// settings_json), or "" to read the string map an older host sends
// instead. It returns nil or a *SettingsError with one Problem per key
// that is unknown, of the wrong type or missing (see Plugin.Settings for
// the rules). Fields whose keys are absent keep the values they had, so
// into may carry the defaults. Serve calls it; it is exported for tests of
// a plugin's settings type.
func DecodeSettings(doc string, strs map[string]string, into any) error {
	rv := reflect.ValueOf(into)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("settings: want a pointer to a struct, got %T", into)
	}
	var root any
	if strings.TrimSpace(doc) != "" {
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		if err := dec.Decode(&root); err != nil {
			return fmt.Errorf("settings: the host sent settings that are not JSON: %w", err)
		}
		if root == nil {
			root = map[string]any{}
		}
	} else {
		m := make(map[string]any, len(strs))
		for k, v := range strs {
			m[k] = v
		}
		root = m
	}
	d := &settingsDecoder{}
	d.decode(root, "", rv.Elem(), true)
	if len(d.problems) > 0 {
		return &SettingsError{Problems: d.problems}
	}
	return nil
}

type settingsDecoder struct {
	problems []Problem
}

func (d *settingsDecoder) add(key, format string, args ...any) {
	switch {
	case len(d.problems) > maxSettingsProblems:
		return
	case len(d.problems) == maxSettingsProblems:
		d.problems = append(d.problems, Problem{Message: "too many problems; stopping here"})
		return
	}
	d.problems = append(d.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// decode sets v from the JSON-shaped value x (map[string]any, []any,
// string, json.Number, bool or nil) found at key.
func (d *settingsDecoder) decode(x any, key string, v reflect.Value, top bool) {
	if x == nil {
		return // null: as if absent
	}
	t := v.Type()
	if t == durationT {
		d.decodeDuration(x, key, v)
		return
	}
	if s, ok := x.(string); ok && t.Kind() != reflect.String && reflect.PointerTo(t).Implements(textUnmarshalerT) {
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.add(key, "%s: %v", describeValue(x), err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(x, key, v.Elem(), top)
	case reflect.Struct:
		if m, ok := d.mapping(x, key); ok {
			d.decodeStruct(m, key, v, top)
		}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			d.add(key, "cannot be read: the plugin's settings type %s has keys that are not strings", t)
			return
		}
		if m, ok := d.mapping(x, key); ok {
			if v.IsNil() {
				v.Set(reflect.MakeMapWithSize(t, len(m)))
			}
			for _, k := range sortedKeys(m) {
				elem := reflect.New(t.Elem()).Elem()
				if old := v.MapIndex(reflect.ValueOf(k).Convert(t.Key())); old.IsValid() {
					elem.Set(old)
				}
				d.decode(m[k], joinSettingsKey(key, k), elem, false)
				v.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), elem)
			}
		}
	case reflect.Slice:
		if l, ok := d.list(x, key); ok {
			s := reflect.MakeSlice(t, len(l), len(l))
			for i, item := range l {
				d.decode(item, key+"["+strconv.Itoa(i)+"]", s.Index(i), false)
			}
			v.Set(s)
		}
	case reflect.String:
		switch x := x.(type) {
		case string:
			v.SetString(x)
		case json.Number:
			v.SetString(x.String())
		case bool:
			v.SetString(strconv.FormatBool(x))
		default:
			d.add(key, "want a string, got %s", describeValue(x))
		}
	case reflect.Bool:
		b, ok := x.(bool)
		if s, isStr := x.(string); isStr {
			pb, err := strconv.ParseBool(s)
			b, ok = pb, err == nil
		}
		if !ok {
			d.add(key, "want true or false, got %s", describeValue(x))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(numberText(x), 10, 64)
		switch {
		case err != nil && errorIsRange(err):
			d.add(key, "%s is out of range", describeValue(x))
		case err != nil:
			d.add(key, "want an integer, got %s", describeValue(x))
		case v.OverflowInt(n):
			d.add(key, "%s is out of range (at most %d)", describeValue(x), maxInt(t))
		default:
			v.SetInt(n)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(numberText(x), 10, 64)
		switch {
		case err != nil && errorIsRange(err):
			d.add(key, "%s is out of range", describeValue(x))
		case err != nil:
			d.add(key, "want a whole number of 0 or more, got %s", describeValue(x))
		case v.OverflowUint(n):
			d.add(key, "%s is out of range", describeValue(x))
		default:
			v.SetUint(n)
		}
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(numberText(x), t.Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.add(key, "want a number, got %s", describeValue(x))
			return
		}
		v.SetFloat(f)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			d.add(key, "cannot be read: the plugin's settings type %s is an interface with methods", t)
			return
		}
		v.Set(reflect.ValueOf(plainValue(x)))
	default:
		d.add(key, "cannot be read: the plugin's settings type %s is not supported", t)
	}
}

// mapping returns x as a mapping; a string is read as YAML (or JSON) of
// one, the form settings had before they could nest (and still have from
// an older host).
func (d *settingsDecoder) mapping(x any, key string) (map[string]any, bool) {
	if s, ok := x.(string); ok {
		if strings.TrimSpace(s) == "" {
			return nil, false // an empty string: as if absent
		}
		var err error
		if x, err = parseNested(s); err != nil {
			d.add(key, "want a mapping, got a string that is not YAML or JSON: %v", err)
			return nil, false
		}
		if x == nil {
			return nil, false
		}
	}
	m, ok := x.(map[string]any)
	if !ok {
		d.add(key, "want a mapping, got %s", describeValue(x))
	}
	return m, ok
}

// list returns x as a list; a string is read as YAML (or JSON) of one.
func (d *settingsDecoder) list(x any, key string) ([]any, bool) {
	if s, ok := x.(string); ok {
		if strings.TrimSpace(s) == "" {
			return nil, false
		}
		var err error
		if x, err = parseNested(s); err != nil {
			d.add(key, "want a list, got a string that is not YAML or JSON: %v", err)
			return nil, false
		}
		if x == nil {
			return nil, false
		}
	}
	l, ok := x.([]any)
	if !ok {
		d.add(key, "want a list, got %s", describeValue(x))
	}
	return l, ok
}

func (d *settingsDecoder) decodeStruct(m map[string]any, key string, v reflect.Value, top bool) {
	fields := settingsFields(v.Type())
	for _, k := range sortedKeys(m) {
		f, ok := fields.byName[k]
		if !ok {
			if top && strings.HasPrefix(k, reservedPrefix) {
				continue // the host's, which this plugin does not read
			}
			msg := "unknown key"
			if s := suggest.Closest(k, fields.names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.add(joinSettingsKey(key, k), "%s", msg)
			continue
		}
		d.decode(m[k], joinSettingsKey(key, k), v.FieldByIndex(f.index), false)
	}
	for _, f := range fields.list {
		if f.required && isAbsent(m[f.name]) {
			d.add(joinSettingsKey(key, f.name), "is required")
		}
	}
}

func (d *settingsDecoder) decodeDuration(x any, key string, v reflect.Value) {
	s, ok := x.(string)
	if !ok {
		if n, isNum := x.(json.Number); isNum {
			d.add(key, "want a duration with a unit, like %ss or %sm, got %s", n, n, n)
			return
		}
		d.add(key, "want a duration like 30s or 5m, got %s", describeValue(x))
		return
	}
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.add(key, "want a duration like 30s, 5m or 1h30m, got %s", describeValue(x))
		return
	}
	v.SetInt(int64(dur))
}

// settingsField is one key of a settings struct.
type settingsField struct {
	name     string
	index    []int
	required bool
}

type fieldSet struct {
	byName map[string]settingsField
	list   []settingsField
	names  []string
}

// settingsFields lists the keys of struct type t: a field's name is its
// settings tag's, else its json tag's, else its Go name in lower case; the
// fields of an embedded struct without a tag are its own.
func settingsFields(t reflect.Type) fieldSet {
	fs := fieldSet{byName: map[string]settingsField{}}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(append([]int(nil), index...), i)
			tag, hasTag := f.Tag.Lookup(settingsTag)
			if !hasTag {
				tag = f.Tag.Get("json")
			}
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" && opts == "" {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			sf := settingsField{name: name, index: idx}
			for _, o := range strings.Split(opts, ",") {
				if o == "required" {
					sf.required = true
				}
			}
			if _, dup := fs.byName[name]; dup {
				continue // the outer field wins, as in encoding/json
			}
			fs.byName[name] = sf
			fs.list = append(fs.list, sf)
			fs.names = append(fs.names, name)
		}
	}
	walk(t, nil)
	return fs
}

// parseNested reads a string that stands for a mapping or list: YAML, of
// which JSON is a part. The result is JSON-shaped, like settings_json.
func parseNested(s string) (any, error) {
	var x any
	dec := yaml.NewDecoder(bytes.NewReader([]byte(s)))
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return jsonShaped(x), nil
}

// jsonShaped turns what yaml decodes into an interface{} into the shapes
// of a JSON document decoded with UseNumber.
func jsonShaped(x any) any {
	switch x := x.(type) {
	case map[string]any:
		for k, v := range x {
			x[k] = jsonShaped(v)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[fmt.Sprint(k)] = jsonShaped(v)
		}
		return m
	case []any:
		for i, v := range x {
			x[i] = jsonShaped(v)
		}
		return x
	case int:
		return json.Number(strconv.Itoa(x))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case uint64:
		return json.Number(strconv.FormatUint(x, 10))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	case nil, string, bool:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// plainValue is x for an `any` field: numbers as int64 when whole, else
// float64.
func plainValue(x any) any {
	switch x := x.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, v := range x {
			x[k] = plainValue(v)
		}
	case []any:
		for i, v := range x {
			x[i] = plainValue(v)
		}
	}
	return x
}

// numberText is the text of a number or string, or "" for anything else
// (which no number parser accepts).
func numberText(x any) string {
	switch x := x.(type) {
	case json.Number:
		return x.String()
	case string:
		return strings.TrimSpace(x)
	}
	return ""
}

func errorIsRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func maxInt(t reflect.Type) int64 { return int64(1)<<(t.Bits()-1) - 1 }

// describeValue names a value for "want X, got Y".
func describeValue(x any) string {
	switch x := x.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	return fmt.Sprint(x)
}

func isAbsent(x any) bool {
	s, isStr := x.(string)
	return x == nil || isStr && s == ""
}

func joinSettingsKey(key, name string) string {
	if key == "" {
		return name
	}
	return key + "." + name
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
