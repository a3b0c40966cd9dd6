#ifndef PEERDIST_C_SYSTEM_SHIMS_H
#define PEERDIST_C_SYSTEM_SHIMS_H

#include <sys/socket.h>

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC: not visible through Swift's Glibc module.
int peerdist_accept_nonblocking(int fd, struct sockaddr *addr, socklen_t *len);

#endif
