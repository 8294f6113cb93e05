/* core/security/pki.h - the cluster's certificates: a CA, the API server's
 * serving certificate and client certificates (CN = user, O = groups).
 *
 * Everything is ECDSA P-256 made with OpenSSL 3's EVP interfaces. Files are
 * created mode 0600 in a 0700 directory and reused on restart while they
 * are valid; the serving certificate is reissued when the names it must
 * carry change. */
#ifndef SKIFF_SECURITY_PKI_H
#define SKIFF_SECURITY_PKI_H

#include <stddef.h>

#include <openssl/ssl.h>

typedef struct pki pki_t;

typedef struct pki_opts {
    /* Extra names on the serving certificate, NULL-terminated arrays or
     * NULL. localhost, 127.0.0.1, ::1, the host name and the host's
     * addresses are always there. */
    const char *const *extra_names;
    const char *const *extra_ips;
    /* Leave out the host name and the interface addresses (tests that
     * need a fixed set of names). */
    int no_host_names;
    /* Load (or create) the CA only: tools that issue client certificates
     * must not rewrite the server's serving certificate. */
    int ca_only;
} pki_opts_t;

/* File names inside the PKI directory. */
#define PKI_CA_CERT "ca.crt"
#define PKI_CA_KEY "ca.key"
#define PKI_SERVER_CERT "server.crt"
#define PKI_SERVER_KEY "server.key"
#define PKI_ADMIN_CERT "admin.crt"
#define PKI_ADMIN_KEY "admin.key"
#define PKI_ADMIN_USER "skiff-admin"
#define PKI_ADMIN_GROUP "system:masters"

/* Loads the PKI in dir, creating or reissuing whatever is missing, invalid
 * or (serving certificate) issued for other names. dir is created 0700.
 * 0 or a negative SKIFF_E* code with a message in err. Free with pki_free. */
int pki_ensure(const char *dir, const pki_opts_t *o, pki_t **out, char *err, size_t errlen);
void pki_free(pki_t *p);

/* PEM texts, owned by p. */
const char *pki_ca_pem(const pki_t *p);
const char *pki_server_cert_pem(const pki_t *p);
const char *pki_server_key_pem(const pki_t *p);
const char *pki_admin_cert_pem(const pki_t *p);
const char *pki_admin_key_pem(const pki_t *p);
/* The CA certificate and key (borrowed, owned by p), for the API server's
 * certificate signer (core/api/csr.c). */
struct x509_st *pki_ca_cert(const pki_t *p);
struct evp_pkey_st *pki_ca_key(const pki_t *p);
/* Set by pki_ensure: which files it (re)wrote this time (bit per file). */
enum { PKI_WROTE_CA = 1, PKI_WROTE_SERVER = 2, PKI_WROTE_ADMIN = 4 };
int pki_written(const pki_t *p);

/* Issues a client certificate signed by the CA: CN = user, one O per
 * group (groups NULL-terminated or NULL), valid for days. The PEM texts
 * are malloc'd and the caller frees them. 0 or a negative SKIFF_E* code. */
int pki_issue_client(const pki_t *p, const char *user, const char *const *groups, int days,
                     char **cert_pem, char **key_pem);

/* The API server's TLS context: serving certificate, client certificates
 * requested and checked against the CA. The CA certificate is sent with
 * the serving certificate, so a joining agent that trusts nothing yet can
 * take it from the handshake and check it against the hash it was given. NULL with a message in err. */
SSL_CTX *pki_server_ctx_new(const pki_t *p, char *err, size_t errlen);

/* Base64 (one line, as kubeconfig *-data fields want) of a NUL-terminated
 * text; malloc'd, NULL when out of memory. */
char *pki_base64_new(const char *text);

#endif
