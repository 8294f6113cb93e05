/* core/http/tls.c - OpenSSL contexts with the project's TLS policy and a
 * socket-free TLS engine on two memory BIOs for the libuv server and client.
 *
 * The owner moves bytes between the socket and the BIOs; this file only
 * runs OpenSSL's state machine. It must not block, read the clock or do
 * I/O of its own. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <skiff/errors.h>

#include "http/tls.h"

/* TLS 1.2 suites: ECDHE key exchange and AEAD only. TLS 1.3 suites are all
 * of that kind; AES-128-GCM goes first (OpenSSL's default puts AES-256
 * first), as it is as safe for this use and cheaper on every record. */
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS12_CIPHERS                                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                             \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                             \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Plaintext gathered into one record when a write comes in pieces. */
#define TLS_GATHER 16384

struct tls_conn {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    int ready;
    char err[160];
};

/* OpenSSL's error queue is per thread and SSL_get_error reads it, so it
 * must be empty before each call; emptying an empty queue is not free, so
 * look first (this is on every read and write). */
static void clear_errors(void)
{
    if (ERR_peek_error())
        ERR_clear_error();
}

static void set_err(char *err, size_t errlen, const char *what)
{
    if (!err || !errlen)
        return;
    unsigned long e = ERR_peek_last_error();
    if (e) {
        char buf[120];
        ERR_error_string_n(e, buf, sizeof buf);
        snprintf(err, errlen, "%s: %s", what, buf);
    } else {
        snprintf(err, errlen, "%s", what);
    }
    ERR_clear_error();
}

/* ---- contexts --------------------------------------------------------------- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof h11 - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no ALPN agreement: HTTP/1.1 anyway */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Adds every certificate of a PEM text to the store (and, for a server,
 * to the CA names sent with the certificate request). Returns the count. */
static int add_ca_pem(SSL_CTX *ctx, const char *pem, int as_client_ca)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (!b)
        return -1;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(store, x) == 1;
        if (ok && as_client_ca)
            ok = SSL_CTX_add_client_CA(ctx, x) == 1;
        X509_free(x);
        if (!ok) {
            n = -1;
            break;
        }
        n++;
    }
    ERR_clear_error(); /* the end of the PEM text is reported as an error */
    BIO_free(b);
    return n;
}

static int use_cert_pem(SSL_CTX *ctx, const char *cert_pem, const char *key_pem)
{
    int ok = 0;
    BIO *b = BIO_new_mem_buf(cert_pem, -1);
    BIO *kb = BIO_new_mem_buf(key_pem, -1);
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    if (!b || !kb)
        goto out;
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    if (!x || SSL_CTX_use_certificate(ctx, x) != 1)
        goto out;
    /* any further certificates are the chain up to the CA */
    X509 *extra;
    while ((extra = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            goto out;
        }
    }
    ERR_clear_error();
    k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    if (!k || SSL_CTX_use_PrivateKey(ctx, k) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        goto out;
    ok = 1;
out:
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(b);
    BIO_free(kb);
    return ok;
}

static SSL_CTX *ctx_common(const SSL_METHOD *m)
{
    SSL_CTX *ctx = SSL_CTX_new(m);
    if (!ctx)
        return NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    return ctx;
}

SSL_CTX *tls_server_ctx_new(const char *cert_pem, const char *key_pem, const char *ca_pem,
                            char *err, size_t errlen)
{
    if (!cert_pem || !key_pem) {
        set_err(err, errlen, "a server certificate and key are required");
        return NULL;
    }
    ERR_clear_error();
    SSL_CTX *ctx = ctx_common(TLS_server_method());
    if (!ctx) {
        set_err(err, errlen, "cannot create the TLS context");
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (!use_cert_pem(ctx, cert_pem, key_pem)) {
        set_err(err, errlen, "cannot use the server certificate and key");
        goto fail;
    }
    if (ca_pem) {
        if (add_ca_pem(ctx, ca_pem, 1) <= 0) {
            set_err(err, errlen, "cannot load the client CA");
            goto fail;
        }
        /* requested, not required: without a certificate the request is
         * anonymous (or uses another credential); a wrong one fails */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    /* needed for session resumption when client certificates are checked */
    static const unsigned char sid[] = "skiff";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tls_client_ctx_new(const tls_client_opts_t *o, char *err, size_t errlen)
{
    if (!o) {
        set_err(err, errlen, "no TLS options");
        return NULL;
    }
    ERR_clear_error();
    SSL_CTX *ctx = ctx_common(TLS_client_method());
    if (!ctx) {
        set_err(err, errlen, "cannot create the TLS context");
        return NULL;
    }
    if (o->insecure_skip_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        if (!o->ca_file && !o->ca_pem) {
            set_err(err, errlen, "a CA (file or PEM) is required to verify the server");
            goto fail;
        }
        if (o->ca_file && SSL_CTX_load_verify_file(ctx, o->ca_file) != 1) {
            set_err(err, errlen, "cannot load the CA file");
            goto fail;
        }
        if (o->ca_pem && add_ca_pem(ctx, o->ca_pem, 0) <= 0) {
            set_err(err, errlen, "cannot load the CA");
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if (o->cert_pem || o->key_pem) {
        if (!o->cert_pem || !o->key_pem || !use_cert_pem(ctx, o->cert_pem, o->key_pem)) {
            set_err(err, errlen, "cannot use the client certificate and key");
            goto fail;
        }
    } else if (o->cert_file || o->key_file) {
        if (!o->cert_file || !o->key_file ||
            SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            set_err(err, errlen, "cannot use the client certificate and key files");
            goto fail;
        }
    }
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- one connection ------------------------------------------------------- */

int tls_conn_new(SSL_CTX *ctx, int is_server, const char *server_name, tls_conn_t **out)
{
    if (!ctx || !out)
        return SKIFF_EINVAL;
    tls_conn_t *t = calloc(1, sizeof(*t));
    if (!t)
        return SKIFF_ENOMEM;
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return SKIFF_ENOMEM;
    }
    /* an empty BIO means "wait for more", not end of stream */
    BIO_set_mem_eof_return(t->rbio, -1);
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (is_server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (server_name && *server_name) {
            unsigned char a[16];
            int ok;
            if (inet_pton(AF_INET, server_name, a) == 1 ||
                inet_pton(AF_INET6, server_name, a) == 1) {
                ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), server_name) == 1;
            } else {
                ok = SSL_set_tlsext_host_name(t->ssl, server_name) == 1 &&
                     SSL_set1_host(t->ssl, server_name) == 1;
            }
            if (!ok) {
                ERR_clear_error();
                tls_conn_free(t);
                return SKIFF_EINVAL;
            }
        }
    }
    *out = t;
    return 0;
}

void tls_conn_free(tls_conn_t *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

SSL *tls_conn_ssl(tls_conn_t *t)
{
    return t ? t->ssl : NULL;
}

int tls_conn_feed(tls_conn_t *t, const char *data, size_t len)
{
    size_t n = 0;
    if (len == 0)
        return 0;
    if (BIO_write_ex(t->rbio, data, len, &n) != 1 || n != len) {
        ERR_clear_error();
        return SKIFF_ENOMEM;
    }
    return 0;
}

static void record_error(tls_conn_t *t, const char *what)
{
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK) {
        snprintf(t->err, sizeof t->err, "%s: certificate verification failed: %s", what,
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
        return;
    }
    set_err(t->err, sizeof t->err, what);
}

int tls_conn_handshake(tls_conn_t *t)
{
    if (t->ready)
        return TLS_OK;
    clear_errors();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->ready = 1;
        return TLS_OK;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return TLS_OK;
    record_error(t, "TLS handshake failed");
    return SKIFF_EIO;
}

int tls_conn_ready(const tls_conn_t *t)
{
    return t && t->ready;
}

int tls_conn_read(tls_conn_t *t, char *buf, size_t cap, size_t *got)
{
    *got = 0;
    if (!t->ready) {
        int r = tls_conn_handshake(t);
        if (r < 0 || !t->ready)
            return r;
    }
    /* nothing buffered, decrypted or not: skip a call that would only say so */
    if (!SSL_has_pending(t->ssl) && BIO_ctrl_pending(t->rbio) == 0)
        return TLS_OK;
    clear_errors();
    size_t n = 0;
    int r = SSL_read_ex(t->ssl, buf, cap, &n);
    if (r == 1) {
        *got = n;
        return TLS_OK;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return TLS_OK;
    if (e == SSL_ERROR_ZERO_RETURN)
        return TLS_CLOSED;
    record_error(t, "TLS read failed");
    return SKIFF_EIO;
}

static int write_all(tls_conn_t *t, const char *data, size_t len)
{
    while (len > 0) {
        size_t n = 0;
        clear_errors();
        if (SSL_write_ex(t->ssl, data, len, &n) != 1) {
            record_error(t, "TLS write failed");
            return SKIFF_EIO;
        }
        data += n;
        len -= n;
    }
    return 0;
}

int tls_conn_writev(tls_conn_t *t, const uv_buf_t *bufs, unsigned n)
{
    if (!t->ready)
        return SKIFF_EINVAL;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    if (n > 1 && total <= TLS_GATHER) {
        /* one record instead of one per piece (a chunk header, its data, CRLF) */
        char gather[TLS_GATHER];
        size_t at = 0;
        for (unsigned i = 0; i < n; i++) {
            memcpy(gather + at, bufs[i].base, bufs[i].len);
            at += bufs[i].len;
        }
        return write_all(t, gather, at);
    }
    for (unsigned i = 0; i < n; i++) {
        int e = write_all(t, bufs[i].base, bufs[i].len);
        if (e < 0)
            return e;
    }
    return 0;
}

size_t tls_conn_out_pending(const tls_conn_t *t)
{
    return BIO_ctrl_pending(t->wbio);
}

size_t tls_conn_out_take(tls_conn_t *t, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0 || BIO_ctrl_pending(t->wbio) == 0)
        return 0;
    if (BIO_read_ex(t->wbio, buf, cap, &n) != 1) {
        clear_errors();
        return 0;
    }
    return n;
}

void tls_conn_shutdown(tls_conn_t *t)
{
    if (!t->ready)
        return;
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
}

const char *tls_conn_error(const tls_conn_t *t)
{
    return t->err[0] ? t->err : "no error";
}

/* ---- peer identity ------------------------------------------------------- */

static char *entry_utf8(X509_NAME *name, int idx)
{
    X509_NAME_ENTRY *e = X509_NAME_get_entry(name, idx);
    unsigned char *u = NULL;
    int len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
    if (len < 0)
        return NULL;
    char *s = malloc((size_t)len + 1);
    if (s) {
        memcpy(s, u, (size_t)len);
        s[len] = '\0';
    }
    OPENSSL_free(u);
    return s;
}

void tls_groups_free(char **groups)
{
    if (!groups)
        return;
    for (char **g = groups; *g; g++)
        free(*g);
    free(groups);
}

int tls_conn_peer_identity(const tls_conn_t *t, char **user, char ***groups)
{
    *user = NULL;
    *groups = NULL;
    if (!t || !t->ready)
        return 0;
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (!x || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return 0;
    /* a client context without a CA never verified anything */
    if (SSL_get_verify_mode(t->ssl) == SSL_VERIFY_NONE)
        return 0;
    X509_NAME *name = X509_get_subject_name(x);
    int cn = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (cn < 0)
        return 0;
    size_t ng = 0;
    for (int i = -1; (i = X509_NAME_get_index_by_NID(name, NID_organizationName, i)) >= 0;)
        ng++;
    char **g = calloc(ng + 1, sizeof(*g));
    char *u = entry_utf8(name, cn);
    if (!g || !u)
        goto nomem;
    size_t at = 0;
    for (int i = -1; (i = X509_NAME_get_index_by_NID(name, NID_organizationName, i)) >= 0;) {
        g[at] = entry_utf8(name, i);
        if (!g[at])
            goto nomem;
        at++;
    }
    *user = u;
    *groups = g;
    return 1;
nomem:
    free(u);
    tls_groups_free(g);
    return SKIFF_ENOMEM;
}
