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

func TestOptionalPrompt(t *testing.T) {
	a := NewAnswers(map[string]string{"given": "s3cret"}, AnswersOptions{})
	v, err := a.Ask(context.Background(), Prompt{ID: "absent", Kind: Secret, Optional: true})
	require.NoError(t, err)
	assert.Equal(t, "", v, "an optional prompt left out of the file is empty")
	v, err = a.Ask(context.Background(), Prompt{ID: "given", Kind: Secret, Optional: true})
	require.NoError(t, err)
	assert.Equal(t, "s3cret", v)
	_, err = a.Ask(context.Background(), Prompt{ID: "absent", Kind: Secret})
	require.ErrorIs(t, err, ErrNoAnswer, "a required one is still an error")
	require.Error(t, Prompt{ID: "c", Kind: Confirm, Optional: true}.Check())

	var out bytes.Buffer
	j := NewJSON(bytes.NewBufferString(`{"id":"absent","value":""}`+"\n"), &out)
	v, err = j.Ask(context.Background(), Prompt{ID: "absent", Kind: Secret, Optional: true})
	require.NoError(t, err)
	assert.Equal(t, "", v)
	assert.Contains(t, out.String(), `"optional":true`)
}
