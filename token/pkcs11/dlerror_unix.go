//go:build unix

package pkcs11

/*
#cgo linux LDFLAGS: -ldl
#cgo freebsd LDFLAGS:
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// trDlopenError tries to load path and copies the loader's message into buf; it reports in
// *hasEntry whether the library exports C_GetFunctionList. A library that loads is left
// loaded: unloading PKCS#11 modules is what crashes some of them.
static void trDlopenError(const char *path, char *buf, size_t n, int *hasEntry) {
	void *h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
	buf[0] = 0;
	*hasEntry = 0;
	if (h == NULL) {
		const char *e = dlerror();
		if (e != NULL) {
			strncpy(buf, e, n - 1);
			buf[n - 1] = 0;
		}
		return;
	}
	*hasEntry = dlsym(h, "C_GetFunctionList") != NULL;
}
*/
import "C"

import "unsafe"

// dlopenError asks the dynamic loader why path does not load.
func dlopenError(path string) (reason string, hasEntry bool) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	buf := (*C.char)(C.malloc(1024))
	defer C.free(unsafe.Pointer(buf))
	var entry C.int
	C.trDlopenError(cpath, buf, 1024, &entry)
	return C.GoString(buf), entry != 0
}
