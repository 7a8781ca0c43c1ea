package wizard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tokenrun/tokenrun/runtime"
)

// MaxDocument bounds a document the page sends to be signed or checked. The wizard is for
// the client's own payment orders and contracts; larger files are signed with tokenrun sign,
// which streams them (up to 4 GiB).
const MaxDocument = 256 << 20

// MaxSignature bounds a signature file the page sends to be checked: an attached signature
// holds its document.
const MaxSignature = MaxDocument + 1<<20

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, key string, err error) {
	fmt.Fprintf(s.o.Log, "wizard: %s %s: %v\n", r.Method, r.URL.Path, err)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"key": key, "message": s.word(requestLang(r, s.o.Lang), key)})
}

// handleState is what the page needs first: the languages, the default one, the version.
func (s *Server) handleState(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	writeJSON(w, map[string]any{"lang": s.o.Lang, "languages": s.o.Languages, "version": runtime.Version, "running": running})
}

// handleCatalog is the page's words in ?lang= and the active set's procedures, titled.
func (s *Server) handleCatalog(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(r, s.o.Lang)
	m, err := s.o.Catalog(lang)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "wizard_error_internal", err)
		return
	}
	words := map[string]string{}
	for k, v := range m {
		if strings.HasPrefix(k, "wizard_") || strings.HasPrefix(k, "procedure_") {
			words[k] = v
		}
	}
	procs, err := s.o.Procedures(lang)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "wizard_error_internal", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "tokenrun_lang", Value: lang, Path: "/", SameSite: http.SameSiteStrictMode, MaxAge: 400 * 24 * 3600})
	writeJSON(w, map[string]any{"lang": lang, "words": words, "procedures": procs})
}

func (s *Server) handleTokens(w http.ResponseWriter, r *http.Request) {
	if !s.idle() {
		s.fail(w, r, http.StatusConflict, "wizard_busy_run", errBusy)
		return
	}
	toks, err := s.o.Tokens(r.Context())
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, "wizard_error_tokens", err)
		return
	}
	if toks == nil {
		toks = []Token{}
	}
	writeJSON(w, toks)
}

func (s *Server) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.running
}

// documents are the files the page sent to be signed, and their signatures, for the
// session: under WorkDir (the data directory), removed when the server stops.
type documents struct {
	dir  string
	mu   sync.Mutex
	seq  int
	byID map[string]*document
}

type document struct {
	name      string // as the person's file was called
	path      string
	signature string // its .p7s, once signed
}

func newDocuments(dir string) *documents {
	return &documents{dir: dir, byID: map[string]*document{}}
}

func (d *documents) removeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dir != "" {
		_ = os.RemoveAll(d.dir)
	}
	d.byID = map[string]*document{}
}

func (d *documents) get(id string) (*document, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	doc, ok := d.byID[id]
	return doc, ok
}

// save stores body as a new document called name.
func (d *documents) save(name string, body io.Reader, limit int64) (string, error) {
	if d.dir == "" {
		return "", errors.New("no work directory")
	}
	d.mu.Lock()
	d.seq++
	id := fmt.Sprintf("d%d", d.seq)
	d.mu.Unlock()
	dir := filepath.Join(d.dir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	if err := copyLimited(path, body, limit); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	d.mu.Lock()
	d.byID[id] = &document{name: name, path: path}
	d.mu.Unlock()
	return id, nil
}

var errTooLarge = errors.New("too large")

func copyLimited(path string, body io.Reader, limit int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(body, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > limit {
		err = errTooLarge
	}
	return err
}

// safeName is the base name of a file the person chose, fit to be a file name here and in
// a download's Content-Disposition.
func safeName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	var b strings.Builder
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`/\:*?"<>|`, r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			r = '_'
		}
		b.WriteRune(r)
	}
	name = b.String()
	if name == "" || name == "." || name == ".." || !utf8.ValidString(name) {
		name = "document"
	}
	if len(name) > 200 {
		name = name[:200]
	}
	return name
}

// handleUpload takes a document to sign: the body is the file, ?name= its name.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	id, err := s.docs.save(safeName(r.URL.Query().Get("name")), r.Body, MaxDocument)
	if errors.Is(err, errTooLarge) {
		s.fail(w, r, http.StatusRequestEntityTooLarge, "wizard_error_too_large", err)
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "wizard_error_internal", err)
		return
	}
	writeJSON(w, map[string]string{"id": id})
}

// handleDownload sends a document's signature, once signed.
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	doc, ok := s.docs.get(r.PathValue("id"))
	if !ok || doc.signature == "" {
		s.fail(w, r, http.StatusNotFound, "wizard_error_no_signature", errors.New("no such signature"))
		return
	}
	w.Header().Set("Content-Type", "application/pkcs7-signature")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": doc.name + ".p7s"}))
	http.ServeFile(w, r, doc.signature)
}

// handleVerify checks a signature: multipart fields signature and, for a detached one,
// document.
func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	mr, err := r.MultipartReader()
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "wizard_error_bad_request", err)
		return
	}
	dir, err := os.MkdirTemp(s.docs.dir, "verify-")
	if err == nil {
		defer os.RemoveAll(dir)
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "wizard_error_internal", err)
		return
	}
	paths := map[string]string{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, "wizard_error_bad_request", err)
			return
		}
		field := part.FormName()
		if field != "signature" && field != "document" || paths[field] != "" {
			s.fail(w, r, http.StatusBadRequest, "wizard_error_bad_request", fmt.Errorf("unexpected part %q", field))
			return
		}
		paths[field] = filepath.Join(dir, field)
		err = copyLimited(paths[field], part, MaxSignature)
		if errors.Is(err, errTooLarge) {
			s.fail(w, r, http.StatusRequestEntityTooLarge, "wizard_error_too_large", err)
			return
		}
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, "wizard_error_internal", err)
			return
		}
	}
	if paths["signature"] == "" {
		s.fail(w, r, http.StatusBadRequest, "wizard_error_bad_request", errors.New("no signature"))
		return
	}
	verdict, err := s.o.Verify(r.Context(), paths["signature"], paths["document"])
	if err != nil {
		s.fail(w, r, http.StatusUnprocessableEntity, "wizard_verify_unreadable", err)
		return
	}
	writeJSON(w, verdict)
}

// handleSupport sends the support bundle.
func (s *Server) handleSupport(w http.ResponseWriter, r *http.Request) {
	if !s.idle() {
		s.fail(w, r, http.StatusConflict, "wizard_busy_run", errBusy)
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="tokenrun-support.zip"`)
	if err := s.o.Support(r.Context(), w); err != nil {
		fmt.Fprintf(s.o.Log, "wizard: support bundle: %v\n", err)
	}
}
