#ifndef PEERDIST_CNGHTTP2_SHIM_H
#define PEERDIST_CNGHTTP2_SHIM_H

#include <stdint.h>
#include <string.h>
#include <nghttp2/nghttp2.h>

/// Builds a header field from pointers. nghttp2 copies name and value when the frame is submitted
/// (no NO_COPY flags), so the pointers need to live only for the submit call.
static inline nghttp2_nv peerdist_nv(const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen) {
    nghttp2_nv nv;
    nv.name = (uint8_t *)name;
    nv.namelen = namelen;
    nv.value = (uint8_t *)value;
    nv.valuelen = valuelen;
    nv.flags = NGHTTP2_NV_FLAG_NONE;
    return nv;
}

/// Frame header fields, read from the nghttp2_frame union (every member starts with the header).
static inline int32_t peerdist_frame_stream_id(const nghttp2_frame *frame) { return frame->hd.stream_id; }
static inline uint8_t peerdist_frame_type(const nghttp2_frame *frame) { return frame->hd.type; }
static inline uint8_t peerdist_frame_flags(const nghttp2_frame *frame) { return frame->hd.flags; }
static inline size_t peerdist_frame_length(const nghttp2_frame *frame) { return frame->hd.length; }

/// The category of a HEADERS frame (request, response, push response, trailers).
static inline int peerdist_frame_headers_category(const nghttp2_frame *frame) { return (int)frame->headers.cat; }
/// The error code of a RST_STREAM frame.
static inline uint32_t peerdist_frame_rst_error_code(const nghttp2_frame *frame) { return frame->rst_stream.error_code; }
/// The error code and last stream id of a GOAWAY frame.
static inline uint32_t peerdist_frame_goaway_error_code(const nghttp2_frame *frame) { return frame->goaway.error_code; }
static inline int32_t peerdist_frame_goaway_last_stream_id(const nghttp2_frame *frame) { return frame->goaway.last_stream_id; }
/// The window size increment of a WINDOW_UPDATE frame.
static inline int32_t peerdist_frame_window_increment(const nghttp2_frame *frame) { return frame->window_update.window_size_increment; }

/// A data provider whose read callback gets the stream's user data through `source.ptr`.
static inline nghttp2_data_provider peerdist_data_provider(void *ptr, nghttp2_data_source_read_callback callback) {
    nghttp2_data_provider provider;
    provider.source.ptr = ptr;
    provider.read_callback = callback;
    return provider;
}

/// One settings entry.
static inline nghttp2_settings_entry peerdist_settings_entry(int32_t id, uint32_t value) {
    nghttp2_settings_entry entry;
    entry.settings_id = id;
    entry.value = value;
    return entry;
}

#endif
