package agent

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
)

// The NCALayer protocol as the published clients speak it (ncalayer-js-client 1.5.6, whose
// test/test-data.json holds answers recorded from NCALayer and KAZTOKEN desktop): one JSON
// object per WebSocket text message each way, one request at a time. The page sends
// {"module", "method", "args"}; the agent first sends {"result":{"version":...}} on connect.
// Module kz.gov.pki.knca.basics answers {"status":true,"body":{"result":...}} (no result: the
// person cancelled) or {"status":false,"code","message","details"}; commonUtils answers
// {"code":"200","responseObject":...} or {"code":"500","message":...}.

// Module names.
const (
	ModuleBasics      = "kz.gov.pki.knca.basics"
	ModuleCommonUtils = "kz.gov.pki.knca.commonUtils"
)

// Storage names NCALayer gives key stores. The agent's token is AKKaztokenStore (the region's
// PKCS#11 module); keys in files are what this product exists to replace, so PKCS12 and JKS
// are refused.
const (
	StorageKaztoken = "AKKaztokenStore"
	StoragePKCS12   = "PKCS12"
	StorageJKS      = "JKS"
)

// Extended key usages of KZ certificates, which commonUtils' keyType names.
const (
	ekuSigning        = "1.3.6.1.5.5.7.3.4"
	ekuAuthentication = "1.3.6.1.5.5.7.3.2"
)

// The caps on what one request may hold. NCALayer publishes no limit of its own; pages meet
// one with documents of a few megabytes (the whole request is one WebSocket message of
// base64), which is why KAZTOKEN desktop added a streaming HTTP API for large ones. The
// agent holds a request in memory while the person looks at it, so these bound its memory
// (the message, its decoded documents, the attached signatures: Runner.memory).
const (
	// MaxDocumentBytes is the largest document: a scanned contract or a month of payment
	// orders as one PDF is well under it.
	MaxDocumentBytes = 32 << 20
	// MaxRequestBytes bounds all documents of a request together.
	MaxRequestBytes = 64 << 20
	// MaxDocuments is how many documents one request may hold: each is listed on the
	// consent page, and a person cannot review more.
	MaxDocuments = 100
	// maxMessage is the longest WebSocket message read: the documents in base64 plus room
	// for the JSON around them. A longer one closes the connection (1009, message too big).
	maxMessage = MaxRequestBytes/3*4 + 1<<20
)

// call is one request of the page.
type call struct {
	Module string          `json:"module"`
	Method string          `json:"method"`
	Args   json.RawMessage `json:"args"`
}

// failure is a request answered with an error. key and args word it for the person from the
// catalog (message, when the procedure worded it already); details are for the page's
// developers, in English. cancelled answers as the person's cancel instead.
type failure struct {
	code      string
	key       string
	args      map[string]any
	message   string
	details   string
	cancelled bool
	err       error // the run's own error, for Once's exit code
}

func (f *failure) Error() string { return f.code + ": " + f.details }

// badRequest is a request the agent cannot read: a missing field, a wrong type.
func badRequest(format string, args ...any) *failure {
	return &failure{code: CodeBadRequest, key: "agent_error_bad_request", details: fmt.Sprintf(format, args...)}
}

// Codes of error answers; a failed procedure answers with its own (PIN_INCORRECT,
// PIN_LOCKED, NO_CERTIFICATE, TOKEN_NOT_PRESENT, REFUSED, ...).
const (
	CodeBadRequest     = "BAD_REQUEST"      // the arguments are not what the method takes
	CodeUnsupported    = "NOT_SUPPORTED"    // XML signing, a method the agent does not offer
	CodeStorageRefused = "STORAGE_REFUSED"  // keys in files, or a key store this computer lacks
	CodeTooLarge       = "TOO_LARGE"        // over MaxDocumentBytes, MaxRequestBytes or MaxDocuments
	CodeRateLimited    = "RATE_LIMITED"     // the origin asked too often
	CodeModuleNotFound = "MODULE_NOT_FOUND" // a module the agent does not have
	CodeInternal       = "INTERNAL"         // a bug or an unexpected failure: the details say which
)

// reply is how a request's result is answered: in the basics shape or commonUtils'.
type reply int

const (
	replyBasics reply = iota + 1
	replyUtils
)

// basicsAnswer is module kz.gov.pki.knca.basics' answer. A cancel is a body without a result,
// which the client reads as "cancelled by user".
type basicsAnswer struct {
	Status  bool        `json:"status"`
	Body    *basicsBody `json:"body,omitempty"`
	Code    string      `json:"code,omitempty"`
	Message string      `json:"message,omitempty"`
	Details *string     `json:"details,omitempty"`
}

type basicsBody struct {
	Result any `json:"result,omitempty"`
}

// utilsAnswer is module kz.gov.pki.knca.commonUtils' answer, and the one for a module the
// agent does not have. The client reads any code but "200" as an error.
type utilsAnswer struct {
	Code           string `json:"code"`
	ResponseObject any    `json:"responseObject,omitempty"`
	Message        string `json:"message,omitempty"`
}

// canceledMessage is commonUtils' cancel: NCALayer answers "action.canceled", and pages
// compare the message with it.
const canceledMessage = "action.canceled"

// signCall is a request that needs the person: documents to sign, or a look at the
// certificate, with how to answer it.
type signCall struct {
	req   *Request
	docs  []*bindsign.Document
	reply reply
	array bool // the page gave an array of documents: answer an array
}

// field is one value of an args object, kept raw so that a wrong type is named.
type fields map[string]json.RawMessage

// object reads raw as a JSON object; name says what it is in an error.
func object(raw json.RawMessage, name string) (fields, *failure) {
	var f fields
	if isNull(raw) || json.Unmarshal(raw, &f) != nil || f == nil {
		return nil, badRequest("%s is not a JSON object", name)
	}
	return f, nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// str reads field name of f as a string; a missing one is def when optional.
func (f fields) str(name string, optional bool, def string) (string, *failure) {
	raw, ok := f[name]
	if !ok || isNull(raw) {
		if optional {
			return def, nil
		}
		return "", badRequest("%s is missing", name)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", badRequest("%s is not a string", name)
	}
	return s, nil
}

// boolean reads field name of f as a boolean, def when missing. NCALayer's own examples
// write "true" as a string too, which is accepted.
func (f fields) boolean(name string, def bool) (bool, *failure) {
	raw, ok := f[name]
	if !ok || isNull(raw) {
		return def, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && (s == "true" || s == "false") {
		return s == "true", nil
	}
	return false, badRequest("%s is not a boolean", name)
}

// strings reads raw as a list of strings; null is nil when nullable.
func stringList(raw json.RawMessage, name string, nullable bool) ([]string, *failure) {
	if isNull(raw) {
		if nullable {
			return nil, nil
		}
		return nil, badRequest("%s is missing", name)
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		return nil, badRequest("%s is not a list of strings", name)
	}
	if list == nil {
		list = []string{}
	}
	return list, nil
}

// positional reads commonUtils' args, a JSON array, into its elements.
func positional(raw json.RawMessage, method string, min int) ([]json.RawMessage, *failure) {
	var list []json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &list) != nil {
		return nil, badRequest("argument type mismatch. Method: %s (args must be an array)", method)
	}
	if len(list) < min {
		return nil, badRequest("argument type mismatch. Method: %s (%d arguments, want %d)", method, len(list), min)
	}
	return list, nil
}

// arg reads positional argument i as a string.
func argString(list []json.RawMessage, i int, method string) (string, *failure) {
	var s string
	if i >= len(list) || isNull(list[i]) || json.Unmarshal(list[i], &s) != nil {
		return "", badRequest("argument type mismatch. Method: %s (argument %d must be a string)", method, i+1)
	}
	return s, nil
}

// documents reads data (one base64 string or a list of them) into the request's documents,
// checking the caps before decoding. decode false signs each string's UTF-8 bytes;
// digested takes each as the SHA-256 digest of a document the page hashed.
func documents(raw json.RawMessage, decode, digested bool) (docs []*bindsign.Document, array bool, f *failure) {
	var list []string
	var one string
	switch {
	case isNull(raw):
		return nil, false, badRequest("data is missing")
	case json.Unmarshal(raw, &one) == nil:
		list = []string{one}
	case json.Unmarshal(raw, &list) == nil:
		array = true
		if len(list) == 0 {
			return nil, true, badRequest("data is an empty list: give at least one document")
		}
	default:
		return nil, false, badRequest("data is neither a string nor a list of strings")
	}
	if len(list) > MaxDocuments {
		return nil, array, &failure{code: CodeTooLarge, key: "agent_error_too_many_documents",
			args: map[string]any{"count": len(list), "limit": MaxDocuments}, details: fmt.Sprintf("%d documents, at most %d", len(list), MaxDocuments)}
	}
	total := 0
	for i, s := range list {
		var b []byte
		if decode || digested {
			s = stripSpace(s)
			if base64.StdEncoding.DecodedLen(len(s)) > MaxDocumentBytes+2 {
				return nil, array, tooLarge(i+1, base64.StdEncoding.DecodedLen(len(s)))
			}
			var err error
			if b, err = base64.StdEncoding.DecodeString(s); err != nil {
				return nil, array, badRequest("data[%d] is not base64 (%v)", i+1, err)
			}
		} else {
			b = []byte(s)
		}
		if len(b) > MaxDocumentBytes {
			return nil, array, tooLarge(i+1, len(b))
		}
		if digested && len(b) != 32 {
			return nil, array, &failure{code: CodeBadRequest, key: "agent_error_digest",
				details: fmt.Sprintf("data[%d] is a digest of %d bytes; a SHA-256 digest is 32", i+1, len(b))}
		}
		total += len(b)
		if total > MaxRequestBytes {
			return nil, array, &failure{code: CodeTooLarge, key: "agent_error_request_too_large", args: map[string]any{"limit": MaxRequestBytes >> 20},
				details: fmt.Sprintf("the documents hold more than %d bytes together", MaxRequestBytes)}
		}
		docs = append(docs, bindsign.NewDocument(i+1, b, digested))
	}
	return docs, array, nil
}

func tooLarge(index, size int) *failure {
	return &failure{code: CodeTooLarge, key: "agent_error_document_too_large", args: map[string]any{"index": index, "limit": MaxDocumentBytes >> 20},
		details: fmt.Sprintf("document %d holds %d bytes, more than %d", index, size, MaxDocumentBytes)}
}

// stripSpace drops the line breaks MIME base64 puts in (NCALayer's Java decoder takes them).
func stripSpace(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// storages decides whether the stores a page allows include the agent's token. nil (any
// store) does; a list must name AKKaztokenStore; keys in files are refused by name.
func storages(allowed []string) *failure {
	if allowed == nil {
		return nil
	}
	files := 0
	for _, s := range allowed {
		switch s {
		case StorageKaztoken:
			return nil
		case StoragePKCS12, StorageJKS:
			files++
		}
	}
	if files > 0 && files == len(allowed) {
		return &failure{code: CodeStorageRefused, key: "agent_error_file_storage",
			details: fmt.Sprintf("allowedStorages %v: keys in files are refused; this agent signs with the token (%s)", allowed, StorageKaztoken)}
	}
	names := strings.Join(allowed, ", ")
	if names == "" {
		names = "-"
	}
	return &failure{code: CodeStorageRefused, key: "agent_error_storage", args: map[string]any{"storages": names},
		details: fmt.Sprintf("allowedStorages %v: this agent signs with %s only", allowed, StorageKaztoken)}
}

// keyType is commonUtils' keyType as the extended key usage the certificate must hold:
// SIGNATURE and AUTHENTICATION name one, anything else lets any certificate sign, as in
// NCALayer.
func keyType(t string) []string {
	switch t {
	case "SIGNATURE":
		return []string{ekuSigning}
	case "AUTHENTICATION":
		return []string{ekuAuthentication}
	}
	return []string{}
}

// parseBasicsSign reads basics' sign arguments.
func parseBasicsSign(raw json.RawMessage) (*signCall, *failure) {
	a, f := object(raw, "args")
	if f != nil {
		return nil, f
	}
	allowed, f := stringList(a["allowedStorages"], "allowedStorages", true)
	if f != nil {
		return nil, f
	}
	format, f := a.str("format", false, "")
	if f != nil {
		return nil, f
	}
	switch strings.ToLower(format) {
	case "cms":
	case "xml":
		return nil, &failure{code: CodeUnsupported, key: "agent_error_xml", details: "format xml (XMLDSig) is not supported yet; ask for format cms"}
	default:
		return nil, badRequest("format %q: want cms", format)
	}
	if f := storages(allowed); f != nil {
		return nil, f
	}
	sp := fields{}
	if raw, ok := a["signingParams"]; ok && !isNull(raw) {
		if sp, f = object(raw, "signingParams"); f != nil {
			return nil, f
		}
	}
	// The published client always sends base64, and its default parameters ({}) mean an
	// attached signature of the decoded document.
	decode, f := sp.boolean("decode", true)
	if f != nil {
		return nil, f
	}
	encapsulate, f := sp.boolean("encapsulate", true)
	if f != nil {
		return nil, f
	}
	digested, f := sp.boolean("digested", false)
	if f != nil {
		return nil, f
	}
	if digested && encapsulate {
		if _, given := sp["encapsulate"]; given {
			return nil, badRequest("signingParams: digested with encapsulate: a signature over a digest cannot hold the document")
		}
		encapsulate = false
	}
	eku := []string{}
	if raw, ok := a["signerParams"]; ok && !isNull(raw) {
		sg, f := object(raw, "signerParams")
		if f != nil {
			return nil, f
		}
		if raw, ok := sg["extKeyUsageOids"]; ok {
			if eku, f = stringList(raw, "signerParams.extKeyUsageOids", true); f != nil {
				return nil, f
			}
		}
		if raw, ok := sg["chain"]; ok {
			// Accepted and not used: the certificate on the token is the client's own.
			if _, f := stringList(raw, "signerParams.chain", true); f != nil {
				return nil, f
			}
		}
	}
	locale, f := a.str("locale", true, "")
	if f != nil {
		return nil, f
	}
	docs, array, f := documents(a["data"], decode, digested)
	if f != nil {
		return nil, f
	}
	if eku == nil {
		eku = []string{}
	}
	req := &Request{Module: ModuleBasics, Method: "sign", Operation: OpSign, Attached: encapsulate, Digested: digested,
		ExtKeyUsage: eku, Language: language(locale)}
	return &signCall{req: req, docs: docs, reply: replyBasics, array: array}, nil
}

// parseUtilsSign reads createCAdESFromBase64 and createCMSSignatureFromBase64 (storage,
// keyType, data, attach) and createCAdESFromBase64Hash (storage, keyType, hash).
func parseUtilsSign(method string, raw json.RawMessage, digested bool) (*signCall, *failure) {
	list, f := positional(raw, method, 3)
	if f != nil {
		return nil, f
	}
	storage, f := argString(list, 0, method)
	if f != nil {
		return nil, f
	}
	kt, f := argString(list, 1, method)
	if f != nil {
		return nil, f
	}
	attach := false
	if !digested && len(list) > 3 && !isNull(list[3]) {
		if json.Unmarshal(list[3], &attach) != nil {
			return nil, badRequest("argument type mismatch. Method: %s (argument 4, attach, must be a boolean)", method)
		}
	}
	if f := storages([]string{storage}); f != nil {
		return nil, f
	}
	docs, array, f := documents(list[2], true, digested)
	if f != nil {
		return nil, f
	}
	req := &Request{Module: ModuleCommonUtils, Method: method, Operation: OpSign, Attached: attach, Digested: digested, ExtKeyUsage: keyType(kt)}
	return &signCall{req: req, docs: docs, reply: replyUtils, array: array}, nil
}

// parseKeyInfo reads getKeyInfo's one argument, the storage.
func parseKeyInfo(raw json.RawMessage) (*signCall, *failure) {
	list, f := positional(raw, "getKeyInfo", 1)
	if f != nil {
		return nil, f
	}
	storage, f := argString(list, 0, "getKeyInfo")
	if f != nil {
		return nil, f
	}
	if f := storages([]string{storage}); f != nil {
		return nil, f
	}
	req := &Request{Module: ModuleCommonUtils, Method: "getKeyInfo", Operation: OpKeyInfo, ExtKeyUsage: []string{}}
	return &signCall{req: req, reply: replyUtils}, nil
}

// language is the run's language for an NCALayer locale ("ru", "kk" or "kz", "en", with a
// region such as ru_RU); "" for one tokenrun does not speak (the region's is used).
func language(locale string) string {
	l := strings.ToLower(locale)
	if i := strings.IndexAny(l, "_-"); i >= 0 {
		l = l[:i]
	}
	switch l {
	case "kk", "kz":
		return "kk"
	case "ru", "en":
		return l
	}
	return ""
}
