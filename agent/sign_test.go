package agent_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/agent"
	"github.com/tokenrun/tokenrun/agent/agenttest"
	"github.com/tokenrun/tokenrun/agent/audit"
	"github.com/tokenrun/tokenrun/cms"
	"github.com/tokenrun/tokenrun/scripts/golden"
	"github.com/tokenrun/tokenrun/ui"
)

// The documents the tests sign: text the consent page previews, and bytes it does not.
var (
	order    = []byte("Платёжное поручение № 17: 150 000,00 KZT, ТОО «Ромашка»\n")
	binary   = []byte{0x25, 0x50, 0x44, 0x46, 0x00, 0x01, 0xff, 0xfe}
	b64      = base64.StdEncoding.EncodeToString
	detached = map[string]any{"decode": true, "encapsulate": false, "digested": false}
	attached = map[string]any{"decode": true, "encapsulate": true, "digested": false, "tsaProfile": map[string]any{}}
)

// verify checks a signature the agent gave: PEM CMS (basics) or base64 DER (commonUtils),
// attached (content nil: it returns the document inside) or detached over content.
func (f *fixture) verify(t *testing.T, sig any, content []byte) []byte {
	t.Helper()
	text, ok := sig.(string)
	require.True(t, ok, "a signature is a string, got %T", sig)
	var der []byte
	if block, _ := pem.Decode([]byte(text)); block != nil {
		require.Equal(t, "CMS", block.Type)
		der = block.Bytes
	} else {
		var err error
		der, err = base64.StdEncoding.DecodeString(text)
		require.NoError(t, err)
	}
	v, err := cms.Verify(der, content, cms.VerifyOptions{Roots: f.roots})
	require.NoError(t, err)
	require.True(t, v.OK(), "%v", v.Problems)
	assert.Equal(t, "CN=qq111111_qwertyui,C=KZ", v.Subject)
	assert.Equal(t, content != nil, v.Detached)
	return v.Content
}

func TestSign(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.dial(t, bankOrigin)
	digest := sha256.Sum256(order)
	docs := [][]byte{order, []byte("order 2\n"), binary}

	t.Run("attached", func(t *testing.T) {
		f.person.Plan(agenttest.Confirmed(pin))
		got := call(t, c, basics(b64(order), attached))
		require.Equal(t, true, got["status"], "%v", got)
		body := got["body"].(map[string]any)
		assert.Equal(t, order, f.verify(t, body["result"], nil))
	})
	t.Run("default parameters are attached", func(t *testing.T) {
		f.person.Plan(agenttest.Confirmed(pin))
		got := call(t, c, basics(b64(order), map[string]any{}))
		assert.Equal(t, order, f.verify(t, got["body"].(map[string]any)["result"], nil))
	})
	t.Run("detached", func(t *testing.T) {
		f.person.Plan(agenttest.Confirmed(pin))
		got := call(t, c, basics(b64(order), detached, "1.3.6.1.5.5.7.3.4"))
		f.verify(t, got["body"].(map[string]any)["result"], order)
	})
	t.Run("an array of three in one consent and one login", func(t *testing.T) {
		f.person.Plan(agenttest.Confirmed(pin))
		got := call(t, c, basics([]string{b64(docs[0]), b64(docs[1]), b64(docs[2])}, detached))
		sigs, ok := got["body"].(map[string]any)["result"].([]any)
		require.True(t, ok, "%v", got)
		require.Len(t, sigs, 3)
		for i, s := range sigs {
			f.verify(t, s, docs[i])
		}
	})
	t.Run("digested", func(t *testing.T) {
		f.person.Plan(agenttest.Confirmed(pin))
		got := call(t, c, basics(b64(digest[:]), map[string]any{"decode": true, "encapsulate": false, "digested": true}))
		f.verify(t, got["body"].(map[string]any)["result"], order)
	})
	t.Run("createCAdESFromBase64", func(t *testing.T) {
		f.person.Plan(agenttest.Confirmed(pin), agenttest.Confirmed(pin), agenttest.Confirmed(pin), agenttest.Confirmed(pin))
		got := call(t, c, utils("createCAdESFromBase64", "AKKaztokenStore", "SIGNATURE", b64(order), false))
		require.Equal(t, "200", got["code"], "%v", got)
		f.verify(t, got["responseObject"], order)
		got = call(t, c, utils("createCAdESFromBase64", "AKKaztokenStore", "AUTHENTICATION", b64(order), true))
		assert.Equal(t, order, f.verify(t, got["responseObject"], nil))
		got = call(t, c, utils("createCMSSignatureFromBase64", "AKKaztokenStore", "SIGNATURE", b64(order)))
		f.verify(t, got["responseObject"], order)
		got = call(t, c, utils("createCAdESFromBase64Hash", "AKKaztokenStore", "SIGNATURE", b64(digest[:])))
		f.verify(t, got["responseObject"], order)
	})
	t.Run("getKeyInfo", func(t *testing.T) {
		f.person.Plan(agenttest.Plan{Confirm: true})
		got := call(t, c, utils("getKeyInfo", "AKKaztokenStore"))
		require.Equal(t, "200", got["code"], "%v", got)
		info := got["responseObject"].(map[string]any)
		assert.Equal(t, "qq111111_qwertyui", info["subjectCn"])
		assert.Equal(t, "Test Bank Root", info["issuerCn"])
		assert.Equal(t, "ECDSA", info["algorithm"])
		assert.Contains(t, info["pem"], "-----BEGIN CERTIFICATE-----")
		assert.Regexp(t, `^\d{13}$`, info["certNotAfter"])
	})
	t.Run("cancel", func(t *testing.T) {
		f.person.Plan(agenttest.Plan{Cancel: true}, agenttest.Plan{Cancel: true})
		assert.Equal(t, map[string]any{"status": true, "body": map[string]any{}}, call(t, c, basics(b64(order), detached)))
		assert.Equal(t, map[string]any{"code": "500", "message": "action.canceled"}, call(t, c, utils("createCAdESFromBase64", "AKKaztokenStore", "SIGNATURE", b64(order), false)))
	})
	t.Run("declined", func(t *testing.T) {
		f.person.Plan(agenttest.Plan{Confirm: false})
		assert.Equal(t, map[string]any{"status": true, "body": map[string]any{}}, call(t, c, basics(b64(order), detached)))
	})
	t.Run("wrong PIN", func(t *testing.T) {
		f.person.Plan(agenttest.Confirmed("Wrong9pin"))
		got := call(t, c, basics(b64(order), detached))
		assert.Equal(t, false, got["status"])
		assert.Equal(t, "PIN_INCORRECT", got["code"])
		assert.Equal(t, "Wrong token password.", got["message"])
		assert.NotContains(t, got["details"], "Wrong9pin")
	})
	t.Run("no certificate for the purpose", func(t *testing.T) {
		f.person.Plan(agenttest.Confirmed(pin))
		got := call(t, c, basics(b64(order), detached, "1.3.6.1.5.5.7.3.4", "1.2.398.3.3.4.1.2"))
		assert.Equal(t, "NO_CERTIFICATE", got["code"], "%v", got)
	})

	// What the person was shown: the origin, the request's summary, the text's preview.
	runs := f.person.Runs()
	require.NotEmpty(t, runs)
	first := runs[0]
	assert.Equal(t, bankOrigin, first.Request.Origin)
	assert.Equal(t, string(order), first.Request.Documents[0].Preview)
	assert.Equal(t, hex.EncodeToString(digest[:]), first.Request.Documents[0].SHA256)
	assert.Equal(t, fmt.Sprintf("https://ib.bank.kz: 1 document to sign, %d bytes in all", len(order)), first.Request.Summary)
	for _, r := range runs {
		if len(r.Request.Documents) == 3 {
			assert.Empty(t, r.Request.Documents[2].Preview, "a binary document has no preview")
		}
		assert.NoError(t, r.Err)
	}

	// The audit log and the transcripts hold the digests, never the documents or the PIN.
	entries, err := audit.Tail(audit.Dir(f.home), 100)
	require.NoError(t, err)
	outcomes := map[string]int{}
	for _, e := range entries {
		outcomes[e.Outcome]++
		if e.Outcome == audit.Signed {
			assert.NotEmpty(t, e.CertificateSerial)
			assert.Equal(t, bankOrigin, e.Origin)
		}
	}
	assert.Equal(t, map[string]int{audit.Signed: 9, audit.Shown: 1, audit.Cancelled: 3, audit.Failed: 2}, outcomes)
	var kept []string
	require.NoError(t, filepath.WalkDir(f.home, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(p, "floor") {
			kept = append(kept, p)
		}
		return err
	}))
	transcripts, withDigest := 0, 0
	for _, p := range kept {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		text := string(b)
		for _, leak := range []string{"Платёжное", "Ромашка", "order 2", b64(order), pin, "Wrong9pin"} {
			assert.NotContains(t, text, leak, "%s", p)
		}
		if strings.Contains(p, "transcripts") {
			transcripts++
			if strings.Contains(text, hex.EncodeToString(digest[:])) {
				withDigest++
			}
		}
	}
	assert.Equal(t, len(runs), transcripts, "every run keeps a transcript")
	assert.Positive(t, withDigest, "the transcripts name the documents by their digest")
}

// A request nobody confirms within agent.consent_timeout is cancelled, and so is one whose
// page goes away while the person is asked.
func TestUnanswered(t *testing.T) {
	f := newFixture(t, fixtureOptions{set: []string{"agent.consent_timeout=300ms"}})
	c := f.dial(t, bankOrigin)
	f.person.Plan(agenttest.Plan{Silent: true})
	start := time.Now()
	assert.Equal(t, map[string]any{"status": true, "body": map[string]any{}}, call(t, c, basics(b64(order), detached)))
	assert.Less(t, time.Since(start), 20*time.Second)

	g := newFixture(t, fixtureOptions{})
	c = g.dial(t, bankOrigin)
	g.person.Plan(agenttest.Plan{Silent: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := []byte(`{"module":"kz.gov.pki.knca.basics","method":"sign","args":{"format":"cms","data":"MTEK"}}`)
	require.NoError(t, c.Write(ctx, websocket.MessageText, b))
	require.Eventually(t, func() bool { return asked(g) }, 20*time.Second, 20*time.Millisecond)
	c.CloseNow()
	var entries []audit.Entry
	require.Eventually(t, func() bool {
		entries, _ = audit.Tail(audit.Dir(g.home), 10)
		return len(entries) == 1
	}, 20*time.Second, 50*time.Millisecond, "the request ends when its page goes")
	assert.Equal(t, audit.Cancelled, entries[0].Outcome)
}

// asked reports whether g's person has been asked the consent question.
func asked(g *fixture) bool {
	for _, l := range g.person.Seen() {
		if l.Type() == "ask" {
			return true
		}
	}
	return false
}

// One page may ask the person only so often; the refusal does not reach the person.
func TestRateLimit(t *testing.T) {
	f := newFixture(t, fixtureOptions{set: []string{"agent.requests_per_minute=2"}})
	c := f.dial(t, bankOrigin)
	f.person.Plan(agenttest.Plan{Confirm: false}, agenttest.Plan{Confirm: false})
	for i := 0; i < 2; i++ {
		assert.Equal(t, true, call(t, c, basics(b64(order), detached))["status"])
	}
	got := call(t, c, basics(b64(order), detached))
	assert.Equal(t, false, got["status"])
	assert.Equal(t, agent.CodeRateLimited, got["code"])
	assert.Equal(t, "This page has sent too many requests: wait a minute and try again.", got["message"])
	assert.Len(t, f.person.Runs(), 2)
}

// countingPerson counts the requests being answered at once.
type countingPerson struct {
	agent.Person
	now, most atomic.Int32
}

func (p *countingPerson) Attend(ctx context.Context, req agent.Request) (ui.Frontend, func(), error) {
	n := p.now.Add(1)
	for m := p.most.Load(); n > m && !p.most.CompareAndSwap(m, n); m = p.most.Load() {
	}
	fe, release, err := p.Person.Attend(ctx, req)
	return fe, func() { p.now.Add(-1); release() }, err
}

// Pages in three tabs asking at once are answered one after another: one consent and one
// token login at a time.
func TestOneAtATime(t *testing.T) {
	var counting *countingPerson
	f := newFixture(t, fixtureOptions{wrap: func(p agent.Person) agent.Person { counting = &countingPerson{Person: p}; return counting }})
	f.person.Plan(agenttest.Confirmed(pin), agenttest.Confirmed(pin), agenttest.Confirmed(pin))
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		c := f.dial(t, bankOrigin)
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := call(t, c, basics(b64(order), detached))
			f.verify(t, got["body"].(map[string]any)["result"], order)
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), counting.most.Load())
}

// A signature whose audit line cannot be written is not handed out: the log is the client's
// account of what pages signed with their key.
func TestAuditLogMustBeWritten(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	// A directory where the log file would be: every append fails.
	require.NoError(t, os.Mkdir(filepath.Join(audit.Dir(f.home), "audit.jsonl"), 0o700))
	c := f.dial(t, bankOrigin)
	f.person.Plan(agenttest.Confirmed(pin))
	got := call(t, c, basics(b64(order), detached))
	assert.Equal(t, false, got["status"])
	assert.Equal(t, agent.CodeInternal, got["code"])
	assert.Contains(t, got["details"], "the audit log cannot be written")
	assert.NotContains(t, fmt.Sprint(got), "BEGIN CMS")
}

// linesPerson answers every request from fixed driver lines and keeps what the host wrote.
type linesPerson struct {
	lines string
	out   golden.SyncBuffer
}

func (p *linesPerson) Attend(context.Context, agent.Request) (ui.Frontend, func(), error) {
	return ui.NewJSON(strings.NewReader(p.lines), &p.out), func() {}, nil
}

// The front-end's own words (an answer it refuses) speak the request's language too.
func TestConsentSpeaksTheRequestsLanguage(t *testing.T) {
	p := &linesPerson{lines: `{"id":"sign_confirm","value":"maybe"}` + "\n" + `{"cancel":true}` + "\n"}
	f := newFixture(t, fixtureOptions{wrap: func(agent.Person) agent.Person { return p }})
	c := f.dial(t, bankOrigin)
	r := basics(b64(order), detached)
	r["args"].(map[string]any)["locale"] = "ru"
	assert.Equal(t, map[string]any{"status": true, "body": map[string]any{}}, call(t, c, r))
	out := p.out.String()
	assert.Contains(t, out, `"type":"invalid"`)
	assert.Contains(t, out, "ответьте «да» или «нет»")
	assert.Contains(t, out, "просит подписать 1 документ")
}

// A large document signs under the sandbox's memory limit, which counts the process's heap:
// the run's limit grows with what the host holds for the request, and garbage left by an
// earlier large request does not count.
func TestLargeDocument(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.dial(t, bankOrigin)
	doc := []byte(strings.Repeat("Платёжное поручение; ", agent.MaxDocumentBytes/len("Платёжное поручение; ")-1))
	require.Greater(t, len(doc), agent.MaxDocumentBytes-64)
	// The largest request: two documents at the cap, attached (the signatures hold them).
	f.person.Plan(agenttest.Confirmed(pin), agenttest.Confirmed(pin))
	got := call(t, c, basics([]string{b64(doc), b64(doc)}, attached))
	require.Equal(t, true, got["status"], "%.300v", got)
	for _, sig := range got["body"].(map[string]any)["result"].([]any) {
		assert.Equal(t, doc, f.verify(t, sig, nil))
	}
	got = call(t, c, basics(b64(doc), detached))
	require.Equal(t, true, got["status"], "%.300v", got)
	f.verify(t, got["body"].(map[string]any)["result"], doc)
}
