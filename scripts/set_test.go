package scripts

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmbeddedSetLoads(t *testing.T) {
	s, err := Embedded()
	require.NoError(t, err)
	assert.Equal(t, "embedded", s.Source)
	assert.Contains(t, s.Names(), "tour")
	for name := range s.Manifest.Procedures {
		assert.NotNil(t, s.Procedures[name], name)
	}
}

func TestLoadErrors(t *testing.T) {
	ok := "version: 1.0.0\napi: 1\nprocedures: {a: a.lua}\n"
	tests := []struct {
		name string
		fs   fstest.MapFS
		err  string
	}{
		{"no manifest", fstest.MapFS{}, "manifest.yaml"},
		{"unknown key", fstest.MapFS{"manifest.yaml": {Data: []byte(ok + "extra: 1\n")}}, "field extra not found"},
		{"api too new", fstest.MapFS{"manifest.yaml": {Data: []byte("version: 2.0.0\napi: 99\nprocedures: {a: a.lua}\n")}}, "need script API 99"},
		{"missing procedure file", fstest.MapFS{"manifest.yaml": {Data: []byte(ok)}}, "procedure a"},
		{"syntax error names the file", fstest.MapFS{"manifest.yaml": {Data: []byte(ok)}, "a.lua": {Data: []byte("return {")}}, "a.lua:"},
		{"library syntax error", fstest.MapFS{"manifest.yaml": {Data: []byte(ok)}, "a.lua": {Data: []byte("return 1")},
			"lib/x.lua": {Data: []byte("local = 1")}}, "lib/x.lua:1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.fs, "test")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
	s, err := Load(fstest.MapFS{"manifest.yaml": {Data: []byte(ok)}, "a.lua": {Data: []byte("return 1")},
		"lib/policy.lua": {Data: []byte("return {}")}}, "test")
	require.NoError(t, err)
	assert.Contains(t, s.Libraries, "lib.policy")
}
