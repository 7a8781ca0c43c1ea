// Package protocoltest checks JSON-lines sessions against docs/protocol.schema.json, for the
// tests of the front-end and of every command that speaks --ui json.
package protocoltest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tokenrun/tokenrun/docs"
)

const schemaURL = "https://github.com/tokenrun/tokenrun/docs/protocol.schema.json"

var (
	once         sync.Once
	host, driver *jsonschema.Schema
	errCompile   error
)

func compile() {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(docs.ProtocolSchema))
	if err != nil {
		errCompile = fmt.Errorf("protocol schema: %w", err)
		return
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(schemaURL, doc); err != nil {
		errCompile = fmt.Errorf("protocol schema: %w", err)
		return
	}
	if host, err = c.Compile(schemaURL + "#/$defs/hostLine"); err != nil {
		errCompile = fmt.Errorf("protocol schema: %w", err)
		return
	}
	if driver, err = c.Compile(schemaURL + "#/$defs/driverLine"); err != nil {
		errCompile = fmt.Errorf("protocol schema: %w", err)
	}
}

func check(s **jsonschema.Schema, line string) error {
	once.Do(compile)
	if errCompile != nil {
		return errCompile
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
	if err != nil {
		return fmt.Errorf("not JSON: %w: %s", err, line)
	}
	if err := (*s).Validate(v); err != nil {
		return fmt.Errorf("%s\n%w", line, err)
	}
	return nil
}

// HostLine checks one line tokenrun wrote.
func HostLine(line string) error { return check(&host, line) }

// DriverLine checks one line a driver sent.
func DriverLine(line string) error { return check(&driver, line) }

// Session checks everything tokenrun wrote in one run (its stdout with --ui json): every line
// is a host line of the schema, the first is hello, the last is result, and there is
// exactly one of each.
func Session(out string) error {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if out == "" {
		return fmt.Errorf("no line at all: a run begins with hello and ends with result")
	}
	var problems []string
	hellos, results := 0, 0
	for i, l := range lines {
		if err := HostLine(l); err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v", i+1, err))
			continue
		}
		var t struct{ Type string }
		_ = json.Unmarshal([]byte(l), &t)
		switch t.Type {
		case "hello":
			hellos++
			if i != 0 {
				problems = append(problems, fmt.Sprintf("line %d: hello is not the first line", i+1))
			}
		case "result":
			results++
			if i != len(lines)-1 {
				problems = append(problems, fmt.Sprintf("line %d: result is not the last line", i+1))
			}
		}
	}
	if hellos != 1 || results != 1 {
		problems = append(problems, fmt.Sprintf("%d hello and %d result lines, want one of each", hellos, results))
	}
	if len(problems) > 0 {
		return fmt.Errorf("--ui json session does not keep the protocol:\n%s", strings.Join(problems, "\n"))
	}
	return nil
}
