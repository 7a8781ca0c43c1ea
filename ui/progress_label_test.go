package ui

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A catalog's own ellipsis is not doubled by the plain progress lines.
func TestPlainProgressTrimsEllipsis(t *testing.T) {
	for _, label := range []string{"Generating the key pair…", "Generating the key pair...", "Generating the key pair"} {
		var out bytes.Buffer
		a := NewAnswers(nil, AnswersOptions{Out: &out})
		p, err := a.Progress(context.Background(), "keygen", label)
		require.NoError(t, err)
		p.Done(true, "")
		assert.Equal(t, "Generating the key pair...\nGenerating the key pair: done\n", out.String(), label)
	}
}
