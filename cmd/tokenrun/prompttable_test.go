package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/scripts"
)

const (
	readmeFile       = "../../README.md"
	promptTableBegin = "<!-- prompt ids: generated from the procedures' metadata by TestREADMEPromptTable (-update) -->\n"
	promptTableEnd   = "<!-- end of prompt ids -->\n"
)

// TestREADMEPromptTable: the README's table of prompt ids is the one the shipped procedures
// declare; -update rewrites it.
func TestREADMEPromptTable(t *testing.T) {
	set, err := scripts.Embedded()
	require.NoError(t, err)
	table, err := promptTable(context.Background(), set)
	require.NoError(t, err)
	b, err := os.ReadFile(readmeFile)
	require.NoError(t, err)
	readme := string(b)
	i, j := strings.Index(readme, promptTableBegin), strings.Index(readme, promptTableEnd)
	require.True(t, i >= 0 && j > i, "README.md has no generated prompt-id table between its markers")
	got := readme[i+len(promptTableBegin) : j]
	if *update {
		require.NoError(t, os.WriteFile(readmeFile, []byte(readme[:i+len(promptTableBegin)]+table+readme[j:]), 0o644))
		return
	}
	require.Equal(t, table, got, "README.md's prompt-id table is out of date: go test ./cmd/tokenrun -run TestREADMEPromptTable -update")
}
