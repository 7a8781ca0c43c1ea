/*
 * A test-only stand-in for bcryptprimitives.dll, for running Go programs under wine.
 *
 * Go 1.24 and later take their random numbers on Windows from
 * bcryptprimitives.dll!ProcessPrng, which Windows 10 has and Debian bookworm's wine 8.0 does
 * not: without it tokenrun.exe dies at start with "fatal error: bcryptprimitives.dll not
 * found". This DLL exports ProcessPrng on top of advapi32's SystemFunction036 (RtlGenRandom,
 * which wine has), so .ci/windows.sh installs it into a throwaway WINEPREFIX's system32. It is
 * never shipped: a real Windows 10 or later has the real one.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll processprng.c processprng.def
 */
#include <windows.h>

/* RtlGenRandom's real name; its length argument is a ULONG, so larger requests go in chunks. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	/* The real ProcessPrng always returns TRUE; Go treats anything else as fatal. */
	return TRUE;
}
