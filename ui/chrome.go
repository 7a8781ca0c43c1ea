package ui

import (
	"fmt"
	"strings"
)

// Chrome renders the words a front-end adds around a procedure's texts: the "Warning:" and
// "Error:" marks, "Enter 1-2:", "[Y/n]", "Not accepted:", the progress markers and the
// messages of an answer the front-end itself refuses ("answer yes or no"). The CLI gives it
// the run's message catalog (keys ui_*, see chromeEnglish), so that a kk or ru run shows
// no English; nil, or a key it returns "" for, is the English built in here.
type Chrome func(key string, args map[string]any) string

// chromeEnglish is every key a Chrome is asked for, with the English text used without one.
// messages/en.yaml holds the same texts.
var chromeEnglish = map[string]string{
	"ui_warning":             "Warning: {text}",
	"ui_error":               "Error: {text}",
	"ui_not_accepted":        "Not accepted: {reason}",
	"ui_enter":               "Enter {keys}",
	"ui_confirm_default_yes": "[Y/n]",
	"ui_confirm_default_no":  "[y/N]",
	"ui_confirm":             "[y/n]",
	"ui_answer_yes_no":       "answer yes or no",
	"ui_choose_option":       "choose one of the options",
	"ui_not_an_option":       "\"{value}\" is not one of the options",
	"ui_answer_too_long":     "the answer is too long",
	"ui_progress_done":       "{label}: done",
	"ui_progress_failed":     "{label}: failed",
}

// ChromeKeys lists the catalog keys a Chrome is asked for.
func ChromeKeys() []string {
	keys := make([]string, 0, len(chromeEnglish))
	for k := range chromeEnglish {
		keys = append(keys, k)
	}
	return keys
}

func (c Chrome) text(key string, args map[string]any) string {
	if c != nil {
		if s := c(key, args); s != "" {
			return s
		}
	}
	s := chromeEnglish[key]
	for k, v := range args {
		s = strings.ReplaceAll(s, "{"+k+"}", fmt.Sprint(v))
	}
	return s
}

// chromed is a front-end that takes a Chrome: the terminal, the answers file and the JSON
// driver (which shows no chrome of its own, but refuses answers in c's words).
type chromed interface{ SetChrome(Chrome) }

// SetChrome gives fe the words c renders, when fe is a front-end that uses any. It returns fe.
func SetChrome(fe Frontend, c Chrome) Frontend {
	if ch, ok := fe.(chromed); ok {
		ch.SetChrome(c)
	}
	return fe
}

// SetChrome sets the words of the terminal's chrome.
func (t *Terminal) SetChrome(c Chrome) {
	t.mu.Lock()
	t.chrome = c
	t.mu.Unlock()
}

// SetChrome sets the words of the marks on messages and of refused answers.
func (a *Answers) SetChrome(c Chrome) { a.chrome = c }

// SetChrome sets the words of the answers the driver refuses ("invalid").
func (j *JSON) SetChrome(c Chrome) { j.chrome = c }

// withChrome is p with c as its chrome unless it has one.
func withChrome(p Prompt, c Chrome) Prompt {
	if p.Chrome == nil {
		p.Chrome = c
	}
	return p
}
