package region

import (
	"reflect"
)

// Map is the region as plain data for a script's ctx.config: the same keys and nesting as the
// YAML, with values a script can use directly:
//   - region is the region's name;
//   - durations (token.wait, ca.timeout) are numbers of seconds, as every tokenrun module
//     takes them;
//   - patterns are their text; validity, templates and subject are lists and tables;
//   - key holds only the fields that go with key.type, so it can be handed to
//     tok:generate_key with a label added;
//   - ca.roots is the PEM text of the roots file (or ""), which ca.enroll takes as it is, so
//     scripts never need to read a file;
//   - messages is left out: scripts get the merged catalog (Catalog), not the overrides.
//
// Only maps, slices, strings, numbers and booleans: every value converts to Lua.
func (r *Region) Map() map[string]any {
	m := plain(reflect.ValueOf(r).Elem()).(map[string]any)
	delete(m, "messages")
	delete(m, "sandbox") // the host's, not the script's
	delete(m, "agent")   // the host's too: the agent enforces it before a script runs
	m["region"] = r.Name
	key := m["key"].(map[string]any)
	for _, f := range keyFields {
		if f.owner != r.Key.Type {
			delete(key, f.name)
		}
	}
	m["ca"].(map[string]any)["roots"] = string(r.CA.RootsPEM)
	return m
}

// plain converts a schema value to plain data.
func plain(v reflect.Value) any {
	t := v.Type()
	switch {
	case t == durationType:
		return v.Interface().(interface{ Seconds() float64 }).Seconds()
	case t == reflect.TypeFor[Pattern]():
		return v.Interface().(Pattern).String()
	case t == reflect.TypeFor[AttrValue]():
		return v.Interface().(AttrValue).plain()
	}
	switch t.Kind() {
	case reflect.Struct:
		out := map[string]any{}
		for _, f := range schemaFields(t) {
			out[f.name] = plain(v.Field(f.index))
		}
		return out
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = plain(v.Index(i))
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[it.Key().String()] = plain(it.Value())
		}
		return out
	}
	return v.Interface()
}
