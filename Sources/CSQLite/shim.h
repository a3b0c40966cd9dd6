#ifndef PEERDIST_CSQLITE_SHIM_H
#define PEERDIST_CSQLITE_SHIM_H

#include <sqlite3.h>

/// `SQLITE_TRANSIENT` is a cast macro (`(sqlite3_destructor_type)-1`) that Swift does not import:
/// binds a blob that SQLite copies before the call returns.
static inline int peerdist_sqlite3_bind_blob_transient(sqlite3_stmt *stmt, int index, const void *bytes, int count) {
    return sqlite3_bind_blob(stmt, index, bytes, count, SQLITE_TRANSIENT);
}

#endif
