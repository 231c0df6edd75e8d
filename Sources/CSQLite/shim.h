#ifndef CALIBCTL_CSQLITE_SHIM_H
#define CALIBCTL_CSQLITE_SHIM_H
#if !__has_include(<sqlite3.h>)
#error "sqlite3.h not found: install it with 'apt-get install libsqlite3-dev' (or run scripts/bootstrap.sh)"
#else
#include <sqlite3.h>
/* SQLITE_TRANSIENT is a cast of -1 to a function pointer: Swift cannot import it. */
static inline sqlite3_destructor_type calib_sqlite_transient(void) { return SQLITE_TRANSIENT; }
#endif /* has_include */
#endif
