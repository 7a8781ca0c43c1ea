package golden

// What a test outside this package needs to run the cases its own way (the language test
// reads the person's screen of every case in kk and ru).

// Answers is the case's answers.yaml as written, its {{NAME}} placeholders left in place.
func (c Case) Answers() (map[string]any, error) {
	return loadAnswers(c.fsys, c.Path()+"/answers.yaml", map[string]string{})
}

// IsolateEnv points TOKENRUN_HOME at home and clears the other TOKENRUN_ variables; it
// returns what puts them back.
func IsolateEnv(home string) func() { return isolateEnv(home) }

// SoftBackend plugs in a blank software token under tmp, as a case without setup gets.
func SoftBackend(tmp string, main Main) (Backend, error) { return softBackend(tmp, Setup{}, main) }

// EnrollOnce enrolls b against ca from the shipped answers, as setup `enrolled` does.
func EnrollOnce(tmp string, b Backend, ca *CA, main Main) error { return enrollOnce(tmp, b, ca, main) }
