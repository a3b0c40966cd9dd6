#ifndef PEERDIST_C_SYSTEM_SHIMS_H
#define PEERDIST_C_SYSTEM_SHIMS_H

#include <stdint.h>
#include <sys/socket.h>

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC: not visible through Swift's Glibc module.
int peerdist_accept_nonblocking(int fd, struct sockaddr *addr, socklen_t *len);

/// Readiness bits, as epoll(7) names them (struct epoll_event is packed and does not import well).
enum {
    PEERDIST_EV_READ = 0x001,     /* EPOLLIN */
    PEERDIST_EV_WRITE = 0x004,    /* EPOLLOUT */
    PEERDIST_EV_ERROR = 0x008,    /* EPOLLERR */
    PEERDIST_EV_HANGUP = 0x010,   /* EPOLLHUP */
    PEERDIST_EV_READ_HANGUP = 0x2000, /* EPOLLRDHUP */
};

/// epoll_create1(EPOLL_CLOEXEC); -1 with errno on failure.
int peerdist_poller_create(void);

/// Adds (op 0), modifies (op 1) or removes (op 2) a descriptor, with a 64-bit token returned in
/// its events; -1 with errno on failure.
int peerdist_poller_control(int poller, int op, int fd, uint32_t events, uint64_t token);

/// Waits up to `timeout_ms` (0 = not at all) for at most `max` events; fills `tokens` and
/// `events` and returns their count, or -1 with errno.
int peerdist_poller_wait(int poller, uint64_t *tokens, uint32_t *events, int max, int timeout_ms);

/// Catches `signal` from now on (sigaction, installed before returning, SA_RESTART): each
/// delivery writes the signal's number as one byte to a non-blocking, close-on-exec pipe whose
/// read end is returned (the same pipe for every signal caught this way); -1 with errno.
int peerdist_catch_signal(int signal);

/// fallocate(2) with FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: frees the file's blocks in
/// [offset, offset + length) (they read as zeros after), keeping its size; -1 with errno (EOPNOTSUPP
/// where the file system cannot punch holes).
int peerdist_punch_hole(int fd, int64_t offset, int64_t length);

/// fallocate(2) with FALLOC_FL_KEEP_SIZE: reserves the file's blocks in [offset, offset + length)
/// without changing its size; -1 with errno.
int peerdist_preallocate(int fd, int64_t offset, int64_t length);

/// mallopt(3) M_MMAP_THRESHOLD and M_TRIM_THRESHOLD: allocations below `mmap_threshold` come from
/// the heap rather than fresh mappings, and freed heap memory is returned to the system only past
/// `trim_threshold`. Returns 1 when both were set.
int peerdist_set_malloc_thresholds(int mmap_threshold, int trim_threshold);

#endif
