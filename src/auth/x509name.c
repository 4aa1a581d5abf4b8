/*
 * x509name.c - user names from client certificates; see x509name.h.
 *
 * RabbitMQ's form is its rabbit_cert_info:subject/1 (RDN sequence reversed,
 * its own table of short names, its escaping), which is close to but not
 * the same as OpenSSL's -nameopt RFC2253 (which writes non-ASCII bytes as
 * they are and knows more short names): an EXTERNAL user created for
 * RabbitMQ must be found under the same name here.
 */
#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/x509name.h"
#include "core/err.h"

/* RabbitMQ's short names; any other attribute is written as its OID. */
static const struct {
    int nid;
    const char *name;
} short_names[] = {
    {NID_surname, "SN"},
    {NID_givenName, "GIVENNAME"},
    {NID_initials, "INITIALS"},
    {NID_generationQualifier, "GENERATIONQUALIFIER"},
    {NID_commonName, "CN"},
    {NID_localityName, "L"},
    {NID_stateOrProvinceName, "ST"},
    {NID_organizationName, "O"},
    {NID_organizationalUnitName, "OU"},
    {NID_title, "TITLE"},
    {NID_countryName, "C"},
    {NID_serialNumber, "SERIALNUMBER"},
    {NID_pseudonym, "PSEUDONYM"},
    {NID_domainComponent, "DC"},
    {NID_pkcs9_emailAddress, "EMAILADDRESS"},
    {NID_streetAddress, "STREET"},
    {NID_userId, "UID"},
};

/* Appends to a bounded buffer; `o` runs past cap on overflow. */
struct out {
    char *p;
    size_t cap, o;
};

static void put(struct out *w, const char *s, size_t n)
{
    if (w->o + n < w->cap)
        memcpy(w->p + w->o, s, n);
    w->o += n;
}

/* NUL-terminated if it fit: 0, or WR_ENOSPC with "" (when cap allows). */
static int out_end(struct out *w)
{
    if (w->o >= w->cap) {
        if (w->cap)
            w->p[0] = '\0';
        return WR_ENOSPC;
    }
    w->p[w->o] = '\0';
    return 0;
}

static void put_escaped(struct out *w, const unsigned char *v, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = v[i];
        char esc[3] = {'\\', 0, 0};
        if (i == 0 && (c == ' ' || c == '#')) {
            esc[1] = (char)c;
            put(w, esc, 2);
        } else if (i > 0 && i == n - 1 && c == ' ') {
            put(w, "\\ ", 2);
        } else if (strchr("\"+,;<>\\", c) && c) {
            esc[1] = (char)c;
            put(w, esc, 2);
        } else if (c < 32 || c >= 126) {
            esc[1] = hex[c >> 4];
            esc[2] = hex[c & 15];
            put(w, esc, 3);
        } else {
            put(w, (const char *)&c, 1);
        }
    }
}

/* An attribute's value in UTF-8 (OpenSSL converts BMP, Universal and T61
 * strings); NULL when it is not a string. The caller frees it. */
static int value_utf8(const X509_NAME_ENTRY *e, unsigned char **v)
{
    const ASN1_STRING *d = X509_NAME_ENTRY_get_data(e);
    return d ? ASN1_STRING_to_UTF8(v, d) : -1;
}

static void put_attr(struct out *w, const X509_NAME_ENTRY *e)
{
    const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
    int nid = OBJ_obj2nid(obj);
    const char *name = NULL;
    unsigned char *v = NULL;
    char oid[128];
    int n;

    for (size_t i = 0; i < sizeof(short_names) / sizeof(short_names[0]); i++)
        if (short_names[i].nid == nid)
            name = short_names[i].name;
    if (!name) {
        if (OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
            snprintf(oid, sizeof(oid), "?");
        name = oid;
    }
    put(w, name, strlen(name));
    put(w, "=", 1);
    if ((n = value_utf8(e, &v)) >= 0) {
        put_escaped(w, v, (size_t)n);
    } else {
        /* Not a string: its DER bytes in hex, RFC 4514's "#" form. */
        const ASN1_STRING *d = X509_NAME_ENTRY_get_data(e);
        static const char hex[] = "0123456789ABCDEF";
        put(w, "#", 1);
        for (int i = 0; d && i < ASN1_STRING_length(d); i++) {
            unsigned char c = ASN1_STRING_get0_data(d)[i];
            char h[2] = {hex[c >> 4], hex[c & 15]};
            put(w, h, 2);
        }
    }
    OPENSSL_free(v);
}

int wr_x509_name_format(const X509_NAME *name, char *out, size_t cap)
{
    struct out w = {out, cap, 0};
    int n = X509_NAME_entry_count(name);
    int end = n; /* entries [start, end) are one RDN */

    /* From the last RDN to the first; inside one, the values in order. */
    while (end > 0) {
        int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(name, end - 1));
        int start = end - 1;
        while (start > 0 && X509_NAME_ENTRY_set(X509_NAME_get_entry(name, start - 1)) == set)
            start--;
        if (end < n)
            put(&w, ",", 1);
        for (int i = start; i < end; i++) {
            if (i > start)
                put(&w, "+", 1);
            put_attr(&w, X509_NAME_get_entry(name, i));
        }
        end = start;
    }
    return out_end(&w);
}

int wr_x509_login_name(const X509 *cert, bool common_name, char *out, size_t cap)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    struct out w = {out, cap, 0};
    int i = -1, found = 0;

    if (!name)
        return WR_ENOT_FOUND;
    if (!common_name)
        return wr_x509_name_format(name, out, cap);
    /* Every CN, in the certificate's order, joined by "," (RabbitMQ's
     * answer to a subject with more than one). */
    while ((i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0) {
        unsigned char *v = NULL;
        int n = value_utf8(X509_NAME_get_entry(name, i), &v);
        if (n < 0 || memchr(v, 0, (size_t)n)) {
            OPENSSL_free(v);
            return WR_ESYNTAX;
        }
        if (found++)
            put(&w, ",", 1);
        put(&w, (const char *)v, (size_t)n);
        OPENSSL_free(v);
    }
    return found ? out_end(&w) : WR_ENOT_FOUND;
}

/* One ASN.1 time as ISO 8601 in UTC, seconds included. */
static int put_time(struct out *w, const ASN1_TIME *t)
{
    struct tm tm;
    char b[32];
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1 || !strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm))
        return WR_ESYNTAX;
    put(w, b, strlen(b));
    return 0;
}

int wr_x509_validity_format(const X509 *cert, char *out, size_t cap)
{
    struct out w = {out, cap, 0};
    if (put_time(&w, X509_get0_notBefore(cert)) < 0)
        return WR_ESYNTAX;
    put(&w, " - ", 3);
    if (put_time(&w, X509_get0_notAfter(cert)) < 0)
        return WR_ESYNTAX;
    return out_end(&w);
}
