package agent

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPreview(t *testing.T) {
	tests := []struct {
		name      string
		in        []byte
		want      string
		truncated bool
	}{
		{"text", []byte("Платёжное поручение\r\n\tсумма 100"), "Платёжное поручение\r\n\tсумма 100", false},
		{"long text", []byte(strings.Repeat("я", PreviewRunes+5)), strings.Repeat("я", PreviewRunes), true},
		{"not UTF-8", []byte{0xff, 0xfe, 'a'}, "", false},
		{"a control character: binary", []byte("%PDF-1.7\x00\x01"), "", false},
		{"an escape sequence is no text", []byte("pay \x1b[2Jnow"), "", false},
		{"empty", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, truncated := preview(tt.in)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.truncated, truncated)
		})
	}
}

func TestLanguage(t *testing.T) {
	for in, want := range map[string]string{"ru": "ru", "kz": "kk", "kk": "kk", "KK_kz": "kk", "en-US": "en", "de": "", "": ""} {
		assert.Equal(t, want, language(in), in)
	}
}
