/*
 * transport_plain.c - the plain TCP transport (see transport.h): readv
 * straight into reserved space at the end of the input buffer, and
 * evbuffer_write (one writev of every chunk) from the output buffer.
 * libevent's own evbuffer_read is not used: it reads at most 4 KiB per
 * call, which would cost a syscall per 4 KiB of publishes.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/util.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/transport.h"

_Thread_local char wr_xport_err[256];

static void set_why(struct wr_xport *x, const char *what, int err)
{
    (void)x;
    snprintf(wr_xport_err, sizeof(wr_xport_err), "%s: %s", what, strerror(err));
}

static enum wr_xp_status plain_read(struct wr_xport *x, struct evbuffer *in, size_t max,
                                    size_t *got)
{
    struct evbuffer_iovec v[2];
    int nv = evbuffer_reserve_space(in, (ev_ssize_t)max, v, 2);
    ssize_t n;

    *got = 0;
    if (nv < 1) {
        snprintf(wr_xport_err, sizeof(wr_xport_err), "out of memory reading");
        return WR_XP_ERROR;
    }
    do
        n = readv(x->fd, (struct iovec *)v, nv);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        evbuffer_commit_space(in, v, 0);
        if (n == 0)
            return WR_XP_EOF;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return WR_XP_WANT_READ;
        set_why(x, "socket error", errno);
        return WR_XP_ERROR;
    }
    size_t left = (size_t)n;
    for (int i = 0; i < nv; i++) {
        if (v[i].iov_len > left)
            v[i].iov_len = left;
        left -= v[i].iov_len;
    }
    evbuffer_commit_space(in, v, nv);
    *got = (size_t)n;
    return (size_t)n < max ? WR_XP_WANT_READ : WR_XP_OK;
}

static enum wr_xp_status plain_write(struct wr_xport *x, struct evbuffer *out, size_t *sent)
{
    int n;
    *sent = 0;
    errno = 0;
    n = evbuffer_write(out, x->fd);
    if (n > 0)
        *sent = (size_t)n;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        set_why(x, "socket write failed", errno);
        return WR_XP_ERROR;
    }
    return evbuffer_get_length(out) ? WR_XP_WANT_WRITE : WR_XP_OK;
}

static bool plain_has_pending(const struct wr_xport *x)
{
    (void)x;
    return false;
}

static bool plain_shutdown(struct wr_xport *x)
{
    return shutdown(x->fd, SHUT_WR) == 0;
}

static void plain_close(struct wr_xport *x)
{
    evutil_closesocket(x->fd);
    x->fd = -1;
}

static struct x509_st *plain_peer_cert(const struct wr_xport *x)
{
    (void)x;
    return NULL;
}

static const char *plain_none(const struct wr_xport *x)
{
    (void)x;
    return NULL;
}

static struct wr_tls_suite plain_suite(const struct wr_xport *x)
{
    (void)x;
    return (struct wr_tls_suite){NULL, NULL, NULL};
}

const struct wr_xport_ops wr_xport_plain = {
    .name = "tcp",
    .read = plain_read,
    .write = plain_write,
    .has_pending = plain_has_pending,
    .shutdown = plain_shutdown,
    .close = plain_close,
    .peer_cert = plain_peer_cert,
    .protocol = plain_none,
    .cipher = plain_none,
    .suite = plain_suite,
};

void wr_xport_plain_init(struct wr_xport *x, int fd)
{
    memset(x, 0, sizeof(*x));
    x->ops = &wr_xport_plain;
    x->fd = fd;
    x->handshake_done = true;
}
