//go:build windows

package bundle

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// systemTrustFile is %ProgramData%\tokenrun\trusted-keys, the machine-wide place for an
// administrator's settings. The folder is asked from Windows, not read from the environment.
func systemTrustFile() string {
	dir, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0)
	if err != nil || dir == "" {
		dir = os.Getenv("ProgramData")
	}
	if dir == "" {
		dir = `C:\ProgramData`
	}
	return filepath.Join(dir, "tokenrun", "trusted-keys")
}

// adminOnly refuses a trust file that a non-administrator owns or may write, from its
// security descriptor (judgeACL decides). Any user may create folders in C:\ProgramData, so
// where the file lies proves nothing: its owner and ACL do.
func adminOnly(path string, _ fs.FileInfo) error {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("%s: cannot read who may write it: %w", path, err)
	}
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return fmt.Errorf("%s: cannot read its owner: %v", path, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil && err != windows.ERROR_OBJECT_NOT_FOUND {
		return fmt.Errorf("%s: cannot read its access control list: %w", path, err)
	}
	var aces []ace
	if dacl != nil {
		for i := range uint32(dacl.AceCount) {
			var a *windows.ACCESS_ALLOWED_ACE
			if err := windows.GetAce(dacl, i, &a); err != nil {
				return fmt.Errorf("%s: cannot read its access control list: %w", path, err)
			}
			// Allowed and denied ACEs both put the SID at SidStart; judgeACL refuses the
			// other types, whose layout differs, by their type alone.
			sid := (*windows.SID)(unsafe.Pointer(&a.SidStart))
			aces = append(aces, ace{Type: a.Header.AceType, Flags: a.Header.AceFlags, Mask: uint32(a.Mask), SID: sid.String()})
		}
	}
	return judgeACL(path, owner.String(), dacl != nil, aces, accountName)
}

// accountName is DOMAIN\name for a SID, or "" when Windows does not know it.
func accountName(s string) string {
	sid, err := windows.StringToSid(s)
	if err != nil {
		return ""
	}
	account, domain, _, err := sid.LookupAccount("")
	if err != nil {
		return ""
	}
	if domain != "" {
		return domain + `\` + account
	}
	return account
}
