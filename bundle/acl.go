package bundle

import (
	"fmt"
	"slices"
)

// The Windows judgement of a trust file, kept apart from the system calls (trust_windows.go)
// so that it is tested on every system: Windows has no mode bits (Go makes them up from the
// read-only attribute, which any user can set), only an owner and an access control list.

// Well-known SIDs that may own or write the system trust file: the Administrators group
// (the owner of what an elevated administrator creates), LocalSystem, and TrustedInstaller
// (the owner of what Windows itself installs).
var adminSIDs = []string{
	"S-1-5-32-544",
	"S-1-5-18",
	"S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464",
}

// ace is one entry of a file's DACL, as judgeACL needs it.
type ace struct {
	Type  uint8 // ACCESS_ALLOWED_ACE_TYPE 0, ACCESS_DENIED_ACE_TYPE 1, ...
	Flags uint8 // INHERIT_ONLY_ACE 0x8: applies to children, not to this file
	Mask  uint32
	SID   string
}

const (
	aceAllowed     = 0
	aceDenied      = 1
	aceInheritOnly = 0x8
	// The rights that let a holder change the file's contents or who may: FILE_WRITE_DATA,
	// FILE_APPEND_DATA, WRITE_DAC, WRITE_OWNER, MAXIMUM_ALLOWED, GENERIC_ALL, GENERIC_WRITE.
	// DELETE is left out: deleting the file only removes trust, and a file recreated by its
	// deleter is theirs, which the owner check refuses.
	writeRights = 0x2 | 0x4 | 0x40000 | 0x80000 | 0x2000000 | 0x10000000 | 0x40000000
)

// judgeACL refuses a trust file that a non-administrator owns or may write. daclPresent is
// false for a NULL DACL, which grants everyone everything. name turns a SID into an account
// name for the message ("" when unknown).
func judgeACL(path, owner string, daclPresent bool, aces []ace, name func(sid string) string) error {
	who := func(sid string) string {
		if n := name(sid); n != "" {
			return n + " (" + sid + ")"
		}
		return sid
	}
	if !slices.Contains(adminSIDs, owner) {
		return fmt.Errorf("%s is owned by %s, not by Administrators: only an administrator may list trusted keys (create it from an elevated prompt, or icacls \"%s\" /setowner Administrators)", path, who(owner), path)
	}
	if !daclPresent {
		return fmt.Errorf("%s has no access control list, so anyone may write it: give it one that lets only Administrators and SYSTEM write (icacls \"%s\" /reset)", path, path)
	}
	for _, a := range aces {
		switch {
		case a.Flags&aceInheritOnly != 0, a.Type == aceDenied:
			// Rules for files created inside it, or taking rights away: neither lets anyone write.
		case a.Type != aceAllowed:
			return fmt.Errorf("%s has an access rule tokenrun does not read (ACE type %d for %s): keep only plain allow and deny rules", path, a.Type, who(a.SID))
		case a.Mask&writeRights != 0 && !slices.Contains(adminSIDs, a.SID):
			return fmt.Errorf("%s may be written by %s, not only by administrators: remove that permission (icacls \"%s\" /inheritance:r /grant:r Administrators:F SYSTEM:F Users:R)", path, who(a.SID), path)
		}
	}
	return nil
}
