package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Trust stores the agent's CA is added to, so that browsers accept wss://127.0.0.1: on
// Linux the NSS databases Chromium (~/.pki/nssdb) and Firefox (each profile's cert9.db) read,
// with NSS's certutil (Debian's libnss3-tools); on Windows the current user's Root store, with
// Windows' certutil, which asks the person to confirm. Nothing is changed for other users or
// system-wide.

// Store is one trust store.
type Store struct {
	Kind string // "nss" or "windows"
	Path string // the NSS database directory; "" for Windows' user store
	For  string // who reads it: Chromium, Firefox profile NAME, Windows (Edge, Chrome)
	// Create makes the database first (Chromium's, before Chromium ever ran).
	Create bool
}

// String names the store for a person.
func (s Store) String() string {
	if s.Kind == "windows" {
		return "the Windows user certificate store Root (" + s.For + ")"
	}
	return fmt.Sprintf("the NSS database sql:%s (%s)", s.Path, s.For)
}

// Stores are the trust stores of the current user: the NSS databases given, or else the ones
// found under home; on Windows the user's Root store.
func Stores(home string, nssdbs []string) []Store {
	if runtime.GOOS == "windows" && len(nssdbs) == 0 {
		return []Store{{Kind: "windows", For: "Edge, Chrome and the programs that use Windows' trust"}}
	}
	if len(nssdbs) > 0 {
		var out []Store
		for _, d := range nssdbs {
			out = append(out, Store{Kind: "nss", Path: d, For: "given with --nssdb", Create: true})
		}
		return out
	}
	chromium := filepath.Join(home, ".pki", "nssdb")
	out := []Store{{Kind: "nss", Path: chromium, For: "Chromium, Chrome", Create: true}}
	for _, pattern := range []string{
		filepath.Join(home, ".mozilla", "firefox", "*", "cert9.db"),
		filepath.Join(home, "snap", "firefox", "common", ".mozilla", "firefox", "*", "cert9.db"),
	} {
		found, _ := filepath.Glob(pattern)
		for _, db := range found {
			dir := filepath.Dir(db)
			out = append(out, Store{Kind: "nss", Path: dir, For: "Firefox profile " + filepath.Base(dir)})
		}
	}
	return out
}

// Change is what Install or Uninstall did to one store, with the command that undoes it.
type Change struct {
	Store Store
	Done  string // "added", "already there", "removed", "not there"
	Undo  string // a command line
	Err   error
}

// certutil runs a certutil with a deadline; NSS's and Windows' take different arguments.
func certutil(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// FindCertutil is the certutil to run: NSS's on Linux and macOS, Windows' own on Windows.
func FindCertutil() (string, error) {
	bin, err := exec.LookPath("certutil")
	if err != nil {
		if runtime.GOOS == "windows" {
			return "", fmt.Errorf("certutil.exe not found: %w", err)
		}
		return "", fmt.Errorf("NSS's certutil is needed to change browsers' trust (Debian, Ubuntu: apt-get install libnss3-tools): %w", err)
	}
	return bin, nil
}

// Install adds ca (its PEM file at caPath) to every store.
func Install(ctx context.Context, bin string, stores []Store, ca *x509.Certificate, caPath string) []Change {
	nick := Nickname(ca)
	var out []Change
	for _, s := range stores {
		ch := Change{Store: s}
		switch s.Kind {
		case "windows":
			ch.Undo = fmt.Sprintf("certutil -user -delstore Root %s", ca.SerialNumber.Text(16))
			_, ch.Err = certutil(ctx, bin, "-user", "-addstore", "Root", caPath)
			ch.Done = "added"
		default:
			ch.Undo = fmt.Sprintf("certutil -d sql:%s -D -n %q", s.Path, nick)
			ch.Done, ch.Err = installNSS(ctx, bin, s, nick, caPath)
		}
		out = append(out, ch)
	}
	return out
}

func installNSS(ctx context.Context, bin string, s Store, nick, caPath string) (string, error) {
	db := "sql:" + s.Path
	if _, err := os.Stat(filepath.Join(s.Path, "cert9.db")); errors.Is(err, os.ErrNotExist) {
		if !s.Create {
			return "", fmt.Errorf("%s has no cert9.db", s.Path)
		}
		if err := os.MkdirAll(s.Path, 0o700); err != nil {
			return "", err
		}
		if _, err := certutil(ctx, bin, "-N", "-d", db, "--empty-password"); err != nil {
			return "", err
		}
	}
	if _, err := certutil(ctx, bin, "-L", "-d", db, "-n", nick); err == nil {
		return "already there", nil
	}
	// C: a CA trusted to issue server certificates, and nothing else (no e-mail, no code).
	if _, err := certutil(ctx, bin, "-A", "-d", db, "-n", nick, "-t", "C,,", "-i", caPath); err != nil {
		return "", err
	}
	return "added", nil
}

// Uninstall removes ca from every store.
func Uninstall(ctx context.Context, bin string, stores []Store, ca *x509.Certificate, caPath string) []Change {
	nick := Nickname(ca)
	var out []Change
	for _, s := range stores {
		ch := Change{Store: s, Undo: "tokenrun agent install-cert"}
		switch s.Kind {
		case "windows":
			_, ch.Err = certutil(ctx, bin, "-user", "-delstore", "Root", ca.SerialNumber.Text(16))
			ch.Done = "removed"
		default:
			db := "sql:" + s.Path
			if _, err := os.Stat(filepath.Join(s.Path, "cert9.db")); err != nil {
				ch.Done = "not there"
			} else if _, err := certutil(ctx, bin, "-L", "-d", db, "-n", nick); err != nil {
				ch.Done = "not there"
			} else {
				_, ch.Err = certutil(ctx, bin, "-D", "-d", db, "-n", nick)
				ch.Done = "removed"
			}
		}
		out = append(out, ch)
	}
	return out
}
