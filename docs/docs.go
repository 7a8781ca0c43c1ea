// Package docs holds the documents the code is checked against: protocol.schema.json, the
// JSON Schema of --ui json, embedded for the tests that validate every line against it.
package docs

import _ "embed"

// ProtocolSchema is protocol.schema.json.
//
//go:embed protocol.schema.json
var ProtocolSchema []byte
