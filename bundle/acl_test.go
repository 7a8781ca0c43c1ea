package bundle

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The system trust file on Windows is trusted only when no one but administrators owns or
// may write it: a key in it runs code as the bank's.
func TestJudgeACL(t *testing.T) {
	const (
		admins  = "S-1-5-32-544"
		system  = "S-1-5-18"
		users   = "S-1-5-32-545"
		alice   = "S-1-5-21-1-2-3-1001"
		creator = "S-1-3-0"
		full    = 0x1f01ff // FILE_ALL_ACCESS
		readX   = 0x1200a9 // FILE_GENERIC_READ | FILE_EXECUTE
	)
	// What an elevated administrator's file in C:\ProgramData\tokenrun gets by inheritance.
	programData := []ace{
		{aceAllowed, 0x10, full, system}, // INHERITED_ACE
		{aceAllowed, 0x10, full, admins},
		{aceAllowed, 0x10, readX, users},
		{aceAllowed, 0x10 | aceInheritOnly, full, creator},
	}
	names := map[string]string{users: `BUILTIN\Users`, alice: `PC\alice`}
	name := func(sid string) string { return names[sid] }

	tests := []struct {
		name  string
		owner string
		dacl  bool
		aces  []ace
		want  string // "" is accepted
	}{
		{"administrator's file", admins, true, programData, ""},
		{"owned by SYSTEM", system, true, programData, ""},
		{"owned by TrustedInstaller", "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464", true, programData, ""},
		{"owned by a user", alice, true, programData, `owned by PC\alice (S-1-5-21-1-2-3-1001), not by Administrators`},
		{"NULL DACL", admins, false, nil, "no access control list, so anyone may write it"},
		{"users may write", admins, true, append(programData[:3:3], ace{aceAllowed, 0, 0x2, users}), `may be written by BUILTIN\Users (S-1-5-32-545)`},
		{"a user may append", admins, true, append(programData[:3:3], ace{aceAllowed, 0, 0x4, alice}), `may be written by PC\alice`},
		{"a user may change the ACL", admins, true, append(programData[:3:3], ace{aceAllowed, 0, 0x40000, alice}), "may be written by"},
		{"GENERIC_ALL for everyone", admins, true, []ace{{aceAllowed, 0, 0x10000000, "S-1-1-0"}}, "may be written by S-1-1-0"},
		{"write for users denied", admins, true, append(programData[:3:3], ace{aceDenied, 0, full, users}), ""},
		{"users may delete only", admins, true, append(programData[:3:3], ace{aceAllowed, 0, 0x10000, users}), ""},
		{"write only for files inside", admins, true, append(programData[:3:3], ace{aceAllowed, aceInheritOnly, full, users}), ""},
		{"an ACE type not read", admins, true, append(programData[:3:3], ace{9, 0, readX, users}), "ACE type 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := judgeACL(`C:\ProgramData\tokenrun\trusted-keys`, tt.owner, tt.dacl, tt.aces, name)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), `C:\ProgramData\tokenrun\trusted-keys`)
		})
	}
}
