#ifndef PEERDIST_CZLIB_SHIM_H
#define PEERDIST_CZLIB_SHIM_H

#include <zlib.h>

/// deflateInit2 is a macro Swift cannot call: gzip wrapper (15 + 16 window bits), level given.
static inline int peerdist_deflate_init_gzip(z_streamp stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

/// inflateInit2 with gzip decoding (15 + 16 window bits).
static inline int peerdist_inflate_init_gzip(z_streamp stream) {
    return inflateInit2(stream, 15 + 16);
}

#endif
