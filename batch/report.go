package batch

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Outcome is how a row ended.
type Outcome string

const (
	Enrolled        Outcome = "enrolled"         // the procedure finished on the row's token
	AlreadyEnrolled Outcome = "already_enrolled" // finished before (an earlier run of the batch, or the token already held the profile)
	Skipped         Outcome = "skipped"          // not run: the operator or an option left it out
	Failed          Outcome = "failed"           // the procedure failed; Code says why
	Pending         Outcome = "pending"          // not finished yet: a rerun continues it
)

// Result is one row's line in the report. Nothing in it is secret.
type Result struct {
	Row        string        `json:"row"`
	UserID     string        `json:"user_id,omitempty"`
	Serial     string        `json:"token_serial,omitempty"`
	Label      string        `json:"token_label,omitempty"`
	Outcome    Outcome       `json:"outcome"`
	Code       string        `json:"error_code,omitempty"`
	Message    string        `json:"error_message,omitempty"`    // in the run's language
	MessageEN  string        `json:"error_message_en,omitempty"` // in English
	KeyID      string        `json:"key_id,omitempty"`
	CertSerial string        `json:"cert_serial,omitempty"`
	Subject    string        `json:"cert_subject,omitempty"`
	NotAfter   *time.Time    `json:"cert_not_after,omitempty"`
	Duration   time.Duration `json:"-"`
	Seconds    float64       `json:"duration_s"`
	// Where the row's time went: key generation on the token and the CA step (request,
	// waits, answer), as the run's call observer timed them. The rest is the host's.
	Keygen        time.Duration `json:"-"`
	CA            time.Duration `json:"-"`
	KeygenSeconds float64       `json:"keygen_s,omitempty"`
	CASeconds     float64       `json:"ca_s,omitempty"`
	Transcript    string        `json:"transcript,omitempty"`
	// Resumed: the row was interrupted before (a kill, a crash, a CA outage) and continued
	// from its enrollment journal. The CA may hold a certificate for it that never reached
	// the token (a request answered while the process died): support reconciles those.
	Resumed bool `json:"resumed,omitempty"`
	// Untouched: the row failed before its run touched the token (its answers did not fit
	// the procedure): the token is not bound to the row and may take another.
	Untouched bool      `json:"-"`
	Ended     time.Time `json:"ended"`
}

var csvHeader = []string{"row", "user_id", "token_serial", "token_label", "outcome", "error_code", "error_message",
	"error_message_en", "key_id", "cert_serial", "cert_subject", "cert_not_after", "duration_s", "transcript", "resumed", "ended"}

func (r Result) csvRecord() []string {
	na := ""
	if r.NotAfter != nil {
		na = r.NotAfter.UTC().Format(time.RFC3339)
	}
	return []string{r.Row, r.UserID, r.Serial, r.Label, string(r.Outcome), r.Code, r.Message, r.MessageEN, r.KeyID,
		r.CertSerial, r.Subject, na, strconv.FormatFloat(r.Seconds, 'f', 3, 64), r.Transcript, strconv.FormatBool(r.Resumed),
		r.Ended.UTC().Format(time.RFC3339)}
}

// report writes each row's line as it ends to every --report file (.csv, else JSON lines),
// flushed and synced, so that what the report says survives a crash right after.
type report struct {
	mu    sync.Mutex
	files []*reportFile
}

type reportFile struct {
	f   *os.File
	csv *csv.Writer // nil: JSON lines
}

// openReport starts each report afresh: it says what this run of the batch found and did
// (rows finished before are listed as such); the journal keeps the history.
func openReport(paths []string) (*report, error) {
	r := &report{}
	for _, p := range paths {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("report: %w", err)
		}
		rf := &reportFile{f: f}
		if strings.EqualFold(filepath.Ext(p), ".csv") {
			rf.csv = csv.NewWriter(f)
			if err := rf.csv.Write(csvHeader); err != nil {
				r.close()
				return nil, fmt.Errorf("report %s: %w", p, err)
			}
			rf.csv.Flush()
		}
		r.files = append(r.files, rf)
	}
	return r, nil
}

func (r *report) write(res Result) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Seconds = res.Duration.Round(time.Millisecond).Seconds()
	res.KeygenSeconds = res.Keygen.Round(time.Millisecond).Seconds()
	res.CASeconds = res.CA.Round(time.Millisecond).Seconds()
	for _, rf := range r.files {
		if rf.csv != nil {
			if err := rf.csv.Write(res.csvRecord()); err != nil {
				return fmt.Errorf("report %s: %w", rf.f.Name(), err)
			}
			rf.csv.Flush()
			if err := rf.csv.Error(); err != nil {
				return fmt.Errorf("report %s: %w", rf.f.Name(), err)
			}
		} else {
			b, err := json.Marshal(res)
			if err != nil {
				return err
			}
			if _, err := rf.f.Write(append(b, '\n')); err != nil {
				return fmt.Errorf("report %s: %w", rf.f.Name(), err)
			}
		}
		if err := rf.f.Sync(); err != nil {
			return fmt.Errorf("report %s: %w", rf.f.Name(), err)
		}
	}
	return nil
}

func (r *report) close() {
	for _, rf := range r.files {
		rf.f.Close()
	}
}

// English glosses the codes a row can fail with, for the report's English column; the
// run's own message (in its language) is beside it.
func English(code string) string {
	if s, ok := english[code]; ok {
		return s
	}
	if strings.HasPrefix(code, "CA_") {
		return "the certificate authority refused the request or could not be used"
	}
	return "the procedure failed (see the transcript)"
}

var english = map[string]string{
	"PIN_INCORRECT":          "the token password is wrong",
	"PIN_LOCKED":             "the token password is locked: unblock it (administrator)",
	"PIN_INVALID":            "the token refuses the new password's length or characters",
	"PIN_NOT_INITIALIZED":    "the token has no user password: unblock sets one",
	"TOKEN_NOT_PRESENT":      "the token was unplugged",
	"TOKEN_DAMAGED":          "the token's own state is damaged",
	"SEVERAL_TOKENS":         "several tokens matched where one was expected",
	"TOKEN_BUSY":             "another tokenrun run is using the token",
	"REFUSED":                "refused for safety",
	"CANCELLED":              "cancelled",
	"TIMED_OUT":              "timed out",
	"INVALID_INPUT":          "an answer in the list is not valid",
	"NO_ANSWER":              "the list lacks an answer the procedure asks for, or holds one it refuses",
	"CA_WRONG_PASSWORD":      "the initial key container did not open: check the OTP PIN and the key file",
	"CA_UNAVAILABLE":         "the certificate authority could not be reached",
	"CA_REFUSED":             "the certificate authority refused the request",
	"CA_PENDING":             "the certificate authority has not issued the certificate yet",
	"CA_CERTIFICATE_REFUSED": "the issued certificate did not check out",
}
