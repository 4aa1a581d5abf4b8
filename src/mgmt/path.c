/*
 * path.c - splitting a management request's path and matching it against
 * route patterns; see path.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "mgmt/path.h"

void wr_mgmt_path_free(struct wr_mgmt_path *p)
{
    for (unsigned i = 0; i < p->n; i++)
        free(p->seg[i]);
    p->n = 0;
}

int wr_mgmt_path_split(const char *raw, struct wr_mgmt_path *p)
{
    memset(p, 0, sizeof(*p));
    if (!raw || raw[0] != '/')
        return -1;
    const char *s = raw + 1;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (!e && n == 0)
            break;
        if (p->n == WR_MGMT_PATH_MAX_SEGMENTS) {
            p->too_deep = true;
            return 0;
        }
        char *enc = malloc(n + 1);
        if (!enc) {
            wr_mgmt_path_free(p);
            return -1;
        }
        memcpy(enc, s, n);
        enc[n] = '\0';
        size_t dlen = 0;
        char *dec = evhttp_uridecode(enc, 0, &dlen);
        free(enc);
        if (!dec) {
            wr_mgmt_path_free(p);
            return -1;
        }
        p->seg[p->n] = dec;
        p->len[p->n] = dlen;
        p->n++;
        if (!e)
            break;
        s = e + 1;
    }
    return 0;
}

bool wr_mgmt_route_match(const char *pattern, const struct wr_mgmt_path *p, struct wr_mgmt_req *rq)
{
    unsigned i = 0, nargs = 0;
    const char *s = pattern + 1;
    if (p->too_deep)
        return false;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (i == p->n)
            return false;
        if (n == 1 && s[0] == ':') {
            if (nargs == WR_MGMT_MAX_ARGS)
                return false;
            if (rq) {
                rq->arg[nargs].ptr = p->seg[i];
                rq->arg[nargs].len = (uint32_t)(p->len[i] > UINT32_MAX ? UINT32_MAX : p->len[i]);
            }
            nargs++;
        } else if (n != p->len[i] || memcmp(s, p->seg[i], n) != 0) {
            return false;
        }
        i++;
        if (!e)
            break;
        s = e + 1;
    }
    if (i != p->n)
        return false;
    if (rq)
        rq->nargs = nargs;
    return true;
}

int wr_mgmt_route_literals(const char *pattern)
{
    int n = 0;
    for (const char *q = pattern; *q; q++)
        if (*q == '/' && q[1] && q[1] != ':')
            n++;
    return n;
}
