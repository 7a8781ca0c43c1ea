package agent_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/agent"
	"github.com/tokenrun/tokenrun/agent/audit"
)

// Only a page of an allowed origin, reaching the agent by a loopback Host, gets the hello;
// every other handshake is refused before the WebSocket opens, and the refusal is logged.
func TestHandshake(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tests := []struct {
		name   string
		header http.Header
		host   string
		status int
		reason string
	}{
		{name: "allowed origin", header: http.Header{"Origin": {bankOrigin}}, status: http.StatusSwitchingProtocols},
		{name: "origin as written differently", header: http.Header{"Origin": {"https://IB.bank.kz:443"}}, status: http.StatusSwitchingProtocols},
		{name: "http loopback origin allowed", header: http.Header{"Origin": {"http://localhost:8080"}}, status: http.StatusSwitchingProtocols},
		{name: "other origin", header: http.Header{"Origin": {"https://evil.example"}}, status: http.StatusForbidden, reason: `origin "https://evil.example" is not in agent.origins`},
		{name: "look-alike origin", header: http.Header{"Origin": {"https://ib.bank.kz.evil.example"}}, status: http.StatusForbidden, reason: "not in agent.origins"},
		{name: "same host over http", header: http.Header{"Origin": {"http://ib.bank.kz"}}, status: http.StatusForbidden, reason: "not in agent.origins"},
		{name: "null origin (a sandboxed frame, a file)", header: http.Header{"Origin": {"null"}}, status: http.StatusForbidden, reason: "not in agent.origins"},
		{name: "no origin", status: http.StatusForbidden, reason: "no Origin header"},
		{name: "rebound host name", header: http.Header{"Origin": {bankOrigin}}, host: "attacker.example:13579", status: http.StatusForbidden, reason: "is not this agent's loopback address"},
		{name: "loopback on another port", header: http.Header{"Origin": {bankOrigin}}, host: "127.0.0.1:1", status: http.StatusForbidden, reason: "is not this agent's loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, f.url, &websocket.DialOptions{HTTPHeader: tt.header, Host: tt.host})
			require.NotNil(t, resp)
			assert.Equal(t, tt.status, resp.StatusCode)
			if tt.status != http.StatusSwitchingProtocols {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			defer c.CloseNow()
			assert.Equal(t, map[string]any{"result": map[string]any{"version": "1.4.0"}}, read(t, c))
		})
	}
	entries, err := audit.Tail(audit.Dir(f.home), 100)
	require.NoError(t, err)
	var reasons []string
	for _, e := range entries {
		assert.Equal(t, audit.Refused, e.Outcome)
		assert.Equal(t, "connect", e.Method)
		reasons = append(reasons, e.Reason)
	}
	assert.Len(t, reasons, 7, "every refusal is in the audit log: %q", reasons)
}

// Every malformed request gets an answer in the shape the client parses into an error (basics:
// status false with code, message and details; commonUtils: code other than "200"), never
// silence; the rest of the protocol answers as NCALayer does.
func TestProtocolShapes(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.dial(t, bankOrigin)
	big := strings.Repeat("A", base64.StdEncoding.EncodedLen(agent.MaxDocumentBytes+3))
	many := make([]string, agent.MaxDocuments+1)
	for i := range many {
		many[i] = "MTEK"
	}
	basicsWith := func(mut func(args map[string]any)) map[string]any {
		r := basics("MTEK", map[string]any{})
		mut(r["args"].(map[string]any))
		return r
	}
	tests := []struct {
		name string
		req  any
		// want: the fields the answer must have; contains: what its message or details say.
		want     map[string]any
		contains string
	}{
		{name: "not JSON", req: "{not json", want: map[string]any{"code": "500"}, contains: "BAD_REQUEST"},
		{name: "JSON but no object", req: `[1,2]`, want: map[string]any{"code": "500"}},
		{name: "KAZTOKEN desktop probe", req: map[string]any{"module": "kz.digiflow.mobile.extensions", "method": "getVersion"},
			want: map[string]any{"code": "500"}, contains: "MODULE_NOT_FOUND"},
		{name: "unknown module", req: map[string]any{"module": "kz.gov.pki.knca.applet.Applet", "method": "browseKeyStore"}, want: map[string]any{"code": "500"}},
		{name: "basics unknown method", req: map[string]any{"module": agent.ModuleBasics, "method": "verify"},
			want: map[string]any{"status": false, "code": agent.CodeUnsupported}},
		{name: "basics args not an object", req: map[string]any{"module": agent.ModuleBasics, "method": "sign", "args": 555},
			want: map[string]any{"status": false, "code": agent.CodeBadRequest}, contains: "args is not a JSON object"},
		{name: "basics no args", req: map[string]any{"module": agent.ModuleBasics, "method": "sign"},
			want: map[string]any{"status": false, "code": agent.CodeBadRequest}},
		{name: "signingParams a number (test-data.json)", req: basics("MTEK", 555),
			want: map[string]any{"status": false, "code": agent.CodeBadRequest}, contains: "signingParams is not a JSON object"},
		{name: "decode not a boolean", req: basics("MTEK", map[string]any{"decode": 3}),
			want: map[string]any{"status": false, "code": agent.CodeBadRequest}, contains: "decode is not a boolean"},
		{name: "format missing", req: basicsWith(func(a map[string]any) { delete(a, "format") }),
			want: map[string]any{"status": false, "code": agent.CodeBadRequest}, contains: "format is missing"},
		{name: "format xml", req: basicsWith(func(a map[string]any) { a["format"] = "xml" }),
			want: map[string]any{"status": false, "code": agent.CodeUnsupported, "message": "XML signing is not supported yet: the page can ask for a CMS signature."}},
		{name: "format unknown", req: basicsWith(func(a map[string]any) { a["format"] = "pdf" }),
			want: map[string]any{"status": false, "code": agent.CodeBadRequest}},
		{name: "allowedStorages a string", req: basicsWith(func(a map[string]any) { a["allowedStorages"] = "AKKaztokenStore" }),
			want: map[string]any{"status": false, "code": agent.CodeBadRequest}, contains: "allowedStorages is not a list of strings"},
		{name: "keys in files", req: basicsWith(func(a map[string]any) { a["allowedStorages"] = []string{"PKCS12"} }),
			want: map[string]any{"status": false, "code": agent.CodeStorageRefused, "message": "Keys in files (PKCS12, JKS) are not used here: sign with your KAZTOKEN token."}},
		{name: "another card", req: basicsWith(func(a map[string]any) { a["allowedStorages"] = []string{"AKKZIDCardStore"} }),
			want: map[string]any{"status": false, "code": agent.CodeStorageRefused}, contains: "AKKZIDCardStore"},
		{name: "data missing", req: basicsWith(func(a map[string]any) { delete(a, "data") }),
			want: map[string]any{"status": false, "code": agent.CodeBadRequest}, contains: "data is missing"},
		{name: "data a number", req: basics(42, map[string]any{}), want: map[string]any{"status": false, "code": agent.CodeBadRequest}},
		{name: "data an empty list", req: basics([]string{}, map[string]any{}), want: map[string]any{"status": false, "code": agent.CodeBadRequest}},
		{name: "data a list of numbers", req: basics([]int{1, 2}, map[string]any{}), want: map[string]any{"status": false, "code": agent.CodeBadRequest}},
		{name: "data not base64", req: basics("!!!", map[string]any{}), want: map[string]any{"status": false, "code": agent.CodeBadRequest}, contains: "data[1] is not base64"},
		{name: "digest of the wrong size (test-data.json's MTEK)", req: basics("MTEK", map[string]any{"digested": true}),
			want: map[string]any{"status": false, "code": agent.CodeBadRequest}, contains: "SHA-256 digest is 32"},
		{name: "digested and encapsulated", req: basics(base64.StdEncoding.EncodeToString(make([]byte, 32)), map[string]any{"digested": true, "encapsulate": true}),
			want: map[string]any{"status": false, "code": agent.CodeBadRequest}, contains: "cannot hold the document"},
		{name: "a document over the cap", req: basics(big, map[string]any{}), want: map[string]any{"status": false, "code": agent.CodeTooLarge}, contains: "more than"},
		{name: "too many documents", req: basics(many, map[string]any{}), want: map[string]any{"status": false, "code": agent.CodeTooLarge},
			contains: "101 documents, at most 100"},
		{name: "extKeyUsageOids not strings", req: basicsWith(func(a map[string]any) { a["signerParams"] = map[string]any{"extKeyUsageOids": []int{1}} }),
			want: map[string]any{"status": false, "code": agent.CodeBadRequest}, contains: "extKeyUsageOids is not a list of strings"},
		{name: "signerParams a string", req: basicsWith(func(a map[string]any) { a["signerParams"] = "any" }),
			want: map[string]any{"status": false, "code": agent.CodeBadRequest}, contains: "signerParams is not a JSON object"},
		{name: "getActiveTokens", req: utils("getActiveTokens"), want: map[string]any{"code": "200", "responseObject": []any{"AKKaztokenStore"}}},
		{name: "getKeyInfo without args", req: map[string]any{"module": agent.ModuleCommonUtils, "method": "getKeyInfo"},
			want: map[string]any{"code": "500"}, contains: "argument type mismatch. Method: getKeyInfo"},
		{name: "getKeyInfo null (test-data.json)", req: utils("getKeyInfo", nil), want: map[string]any{"code": "500"}, contains: "argument type mismatch"},
		{name: "getKeyInfo a number (test-data.json)", req: utils("getKeyInfo", 1), want: map[string]any{"code": "500"}, contains: "argument type mismatch"},
		{name: "getKeyInfo PKCS12", req: utils("getKeyInfo", "PKCS12"), want: map[string]any{"code": "500"}, contains: "STORAGE_REFUSED"},
		{name: "createCAdESFromBase64 keyType a number (test-data.json)", req: utils("createCAdESFromBase64", "AKKaztokenStore", 123, "MTEK", false),
			want: map[string]any{"code": "500"}, contains: "argument type mismatch. Method: createCAdESFromBase64"},
		{name: "createCAdESFromBase64 attach a string", req: utils("createCAdESFromBase64", "AKKaztokenStore", "SIGNATURE", "MTEK", "yes"),
			want: map[string]any{"code": "500"}, contains: "attach, must be a boolean"},
		{name: "createCAdESFromBase64Hash empty (test-data.json)", req: utils("createCAdESFromBase64Hash", "AKKaztokenStore", "123", ""),
			want: map[string]any{"code": "500"}, contains: "SHA-256 digest is 32"},
		{name: "createCMSSignatureFromBase64 keyType a list (test-data.json)", req: utils("createCMSSignatureFromBase64", "AKKaztokenStore", []int{7, 7, 7}, "MTEK", false),
			want: map[string]any{"code": "500"}, contains: "argument type mismatch"},
		{name: "signXml", req: utils("signXml", "AKKaztokenStore", "SIGNATURE", "<tag>data</tag>", "", ""),
			want: map[string]any{"code": "500"}, contains: "XML signing is not supported yet"},
		{name: "signXmls", req: utils("signXmls", "AKKaztokenStore", "SIGNATURE", []string{"<a/>"}, "", ""), want: map[string]any{"code": "500"}, contains: "NOT_SUPPORTED"},
		{name: "changeLocale a number (test-data.json)", req: utils("changeLocale", 2), want: map[string]any{"code": "500"}, contains: "argument type mismatch"},
		{name: "changeLocale", req: utils("changeLocale", "kz"), want: map[string]any{"code": "200"}},
		{name: "errors after changeLocale speak its language", req: utils("signXml", "AKKaztokenStore", "SIGNATURE", "<a/>", "", ""),
			want: map[string]any{"code": "500"}, contains: "XML қолтаңбасына әзірге қолдау жоқ"},
		{name: "a request's own locale wins", req: basicsWith(func(a map[string]any) { a["format"] = "xml"; a["locale"] = "ru" }),
			want: map[string]any{"status": false, "message": "Подпись XML пока не поддерживается: страница может запросить подпись CMS."}},
		{name: "unknown commonUtils method", req: utils("getTokens"), want: map[string]any{"code": "500"}, contains: "kz.gov.pki.knca.commonUtils.getTokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := call(t, c, tt.req)
			for k, v := range tt.want {
				assert.Equal(t, v, got[k], "%s in %v", k, got)
			}
			if _, basics := got["status"]; basics && got["status"] == false {
				for _, k := range []string{"code", "message", "details"} {
					assert.IsType(t, "", got[k], "%s: the client prints code: message (details)", k)
				}
			}
			if tt.contains != "" {
				text, _ := got["message"].(string)
				details, _ := got["details"].(string)
				assert.Contains(t, text+" "+details, tt.contains)
			}
		})
	}
	assert.Empty(t, f.person.Runs(), "no malformed request reached the person")
}

// A message longer than the cap closes the connection (1009) rather than being read whole.
func TestMessageTooBig(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.dial(t, bankOrigin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	huge := `{"module":"kz.gov.pki.knca.basics","method":"sign","args":{"data":"` + strings.Repeat("A", agent.MaxRequestBytes/3*4+2<<20) + `"}}`
	_ = c.Write(ctx, websocket.MessageText, []byte(huge))
	_, _, err := c.Read(ctx)
	require.Error(t, err)
	assert.Equal(t, websocket.StatusMessageTooBig, websocket.CloseStatus(err), "%v", err)
}
