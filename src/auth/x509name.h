/*
 * x509name.h - the user name of an EXTERNAL login (SASL EXTERNAL with a
 * TLS client certificate), as RabbitMQ's rabbitmq_auth_mechanism_ssl
 * derives it: the certificate subject's distinguished name in RabbitMQ's
 * RFC 4514 form, or its common name. Knows certificates, not sockets.
 */
#ifndef WR_AUTH_X509NAME_H
#define WR_AUTH_X509NAME_H

#include <stdbool.h>
#include <stddef.h>

struct x509_st;      /* OpenSSL's X509 */
struct X509_name_st; /* OpenSSL's X509_NAME */

/* A name as RabbitMQ writes a subject: the RDNs from the last to the
 * first, separated by ",", the values of a multi-valued RDN by "+", each
 * attribute by its short name (CN, OU, O, L, ST, C, DC, EMAILADDRESS, UID,
 * ...) or its dotted OID, values in UTF-8 with RFC 4514's escapes (a
 * leading space or "#", a trailing space, and  " + , ; < > \  take a
 * backslash; bytes below 32 or from 126 up are written \XX). Example:
 * "CN=app1,OU=TLS\, tests,O=Example,C=GB". Returns 0, or WR_ENOSPC when it
 * does not fit in `cap` bytes (NUL included). */
int wr_x509_name_format(const struct X509_name_st *name, char *out, size_t cap);

/* A certificate's validity as RabbitMQ's management API shows it
 * (peer_cert_validity): "2026-12-07T04:39:02Z - 2026-12-09T04:39:02Z",
 * not before and not after, UTC. Returns 0, WR_ENOSPC when it does not
 * fit in `cap` bytes, or WR_ESYNTAX for a time OpenSSL cannot read. */
int wr_x509_validity_format(const struct x509_st *cert, char *out, size_t cap);

/* The login name of a client certificate: its subject as above
 * (common_name false), or its CN values joined by "," (common_name true,
 * not escaped). Returns 0; WR_ENOT_FOUND when the subject has no CN;
 * WR_ENOSPC when the name is longer than cap - 1; WR_ESYNTAX when a CN
 * holds a NUL byte or is not a string. */
int wr_x509_login_name(const struct x509_st *cert, bool common_name, char *out, size_t cap);

#endif
