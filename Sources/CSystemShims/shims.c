#define _GNU_SOURCE
#include "CSystemShims.h"

#if defined(__linux__)
int peerdist_accept_nonblocking(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}
#else
#include <fcntl.h>
#include <unistd.h>
int peerdist_accept_nonblocking(int fd, struct sockaddr *addr, socklen_t *len) {
    int c = accept(fd, addr, len);
    if (c >= 0) {
        fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
        fcntl(c, F_SETFD, FD_CLOEXEC);
    }
    return c;
}
#endif
