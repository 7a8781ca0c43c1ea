package ui

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// kkChrome is a stand-in for the kk catalog's ui_* texts.
func kkChrome(key string, args map[string]any) string {
	m := map[string]string{
		"ui_warning": "Ескерту: {text}", "ui_error": "Қате: {text}", "ui_not_accepted": "Қабылданбады: {reason}",
		"ui_enter": "Енгізіңіз: {keys}", "ui_confirm_default_yes": "[И/ж]", "ui_answer_yes_no": "«иә» немесе «жоқ» деп жауап беріңіз",
		"ui_progress_done": "{label}: дайын", "ui_progress_failed": "{label}: сәтсіз аяқталды",
	}
	s := m[key]
	for k, v := range args {
		s = strings.ReplaceAll(s, "{"+k+"}", v.(string))
	}
	return s
}

func TestTerminalChrome(t *testing.T) {
	var out bytes.Buffer
	term := NewTerminal(strings.NewReader("бәлкім\nиә\n3\n1\n"), &out, TerminalOptions{})
	SetChrome(term, kkChrome)
	ctx := context.Background()
	if v, err := term.Ask(ctx, Prompt{ID: "go", Kind: Confirm, Label: "Бастайсыз ба?", Default: "yes"}); err != nil || v != "yes" {
		t.Fatalf("confirm: %q, %v", v, err)
	}
	if v, err := term.Ask(ctx, Prompt{ID: "pick", Kind: Choice, Label: "Таңдаңыз", Choices: []Option{{Value: "a", Label: "А"}, {Value: "b", Label: "Б"}}}); err != nil || v != "a" {
		t.Fatalf("choice: %q, %v", v, err)
	}
	_ = term.Say(ctx, Warn, "абай")
	_ = term.Say(ctx, Error, "қате")
	p, _ := term.Progress(ctx, "gen", "Жасалуда…")
	p.Done(true, "")
	p, _ = term.Progress(ctx, "gen2", "Жазылуда…")
	p.Done(false, "")
	got := out.String()
	for _, want := range []string{"Бастайсыз ба? [И/ж]: ", "Қабылданбады: «иә» немесе «жоқ» деп жауап беріңіз", "Енгізіңіз: 1-2: ",
		"Қабылданбады: \"3\" is not one of the options", // a key the chrome lacks stays English
		"Ескерту: абай\n", "Қате: қате\n", "Жасалуда: дайын\n", "Жазылуда: сәтсіз аяқталды\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%s", want, got)
		}
	}
	for _, english := range []string{"Warning", "Error", "Enter", "Not accepted", "[Y/n]", "answer yes", ": done", ": failed"} {
		if strings.Contains(got, english) {
			t.Errorf("terminal output holds %q:\n%s", english, got)
		}
	}
}

func TestChromeKeysAreEnglishByDefault(t *testing.T) {
	var out bytes.Buffer
	term := NewTerminal(strings.NewReader("x\n"), &out, TerminalOptions{})
	_ = term.Say(context.Background(), Warn, "careful")
	if out.String() != "Warning: careful\n" {
		t.Errorf("without a chrome: %q", out.String())
	}
	if len(ChromeKeys()) != len(chromeEnglish) {
		t.Error("ChromeKeys")
	}
}
