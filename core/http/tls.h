/* core/http/tls.h - TLS for the libuv HTTP server and client: OpenSSL
 * contexts with the project's policy, and a connection engine on memory BIOs.
 *
 * The engine never touches a socket. The owner feeds it the bytes read
 * from the network (tls_conn_feed), pulls plaintext out (tls_conn_read),
 * pushes plaintext in (tls_conn_write) and sends whatever ciphertext is
 * waiting (tls_conn_out / tls_conn_out_consume) with its own uv_write.
 * That keeps TLS on the event loop: no blocking and no thread per
 * connection. Nothing here knows HTTP. */
#ifndef SKIFF_HTTP_TLS_H
#define SKIFF_HTTP_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>
#include <uv.h>

/* ---- contexts --------------------------------------------------------------- */

/* A server context: TLS 1.2 and 1.3 only, forward-secret AEAD ciphers,
 * ALPN "http/1.1". With ca_pem, client certificates are requested but
 * optional; one that is given must chain to that CA or the handshake fails.
 * PEM strings are copied. NULL on error, with a message in err. Free with
 * SSL_CTX_free. */
SSL_CTX *tls_server_ctx_new(const char *cert_pem, const char *key_pem, const char *ca_pem,
                            char *err, size_t errlen);

typedef struct tls_client_opts {
    const char *ca_file; /* PEM file of trusted CAs, or NULL */
    const char *ca_pem;  /* PEM text of trusted CAs, or NULL */
    /* Optional client certificate: PEM text or files (text wins). */
    const char *cert_pem, *key_pem;
    const char *cert_file, *key_file;
    int insecure_skip_verify; /* tests only: do not check the server at all */
} tls_client_opts_t;

/* A client context: TLS 1.2+, the server's chain verified against the CA
 * (at least one of ca_file / ca_pem unless insecure_skip_verify). NULL on
 * error, with a message in err. Free with SSL_CTX_free. */
SSL_CTX *tls_client_ctx_new(const tls_client_opts_t *o, char *err, size_t errlen);

/* ---- one connection ------------------------------------------------------- */

typedef struct tls_conn tls_conn_t;

enum {
    TLS_OK = 0,       /* progress; check tls_conn_out_pending for bytes to send */
    TLS_CLOSED = 1,   /* the peer sent close_notify */
};

/* server_name (client side): the DNS name or IP address the certificate
 * must carry; a DNS name is also sent as SNI. NULL skips the name check
 * (the chain is still verified). 0 or SKIFF_ENOMEM / SKIFF_EINVAL. */
int tls_conn_new(SSL_CTX *ctx, int is_server, const char *server_name, tls_conn_t **out);
void tls_conn_free(tls_conn_t *t);

/* Bytes read from the socket. 0 or SKIFF_ENOMEM. */
int tls_conn_feed(tls_conn_t *t, const char *data, size_t len);

/* Advances the handshake (client: call once after connect to produce the
 * ClientHello). TLS_OK, or SKIFF_EIO when the handshake failed. */
int tls_conn_handshake(tls_conn_t *t);
int tls_conn_ready(const tls_conn_t *t);

/* Decrypts into buf. *got is 0 when nothing more can be read now.
 * TLS_OK, TLS_CLOSED, or SKIFF_EIO on a protocol or verification error.
 * Drives the handshake while it is not finished. */
int tls_conn_read(tls_conn_t *t, char *buf, size_t cap, size_t *got);

/* Encrypts plaintext (after the handshake); small buffers are gathered
 * into one record. 0 or a negative SKIFF_E* code. */
int tls_conn_writev(tls_conn_t *t, const uv_buf_t *bufs, unsigned n);

/* Ciphertext waiting to be sent, and taking it out (up to cap bytes). */
size_t tls_conn_out_pending(const tls_conn_t *t);
size_t tls_conn_out_take(tls_conn_t *t, char *buf, size_t cap);

/* Queues close_notify (send it with tls_conn_out_take). */
void tls_conn_shutdown(tls_conn_t *t);

/* Why the handshake or a read failed (OpenSSL's reason or the verify error). */
const char *tls_conn_error(const tls_conn_t *t);

/* The verified client certificate's subject: CN as user, each O as a
 * group. Returns 1 and fills *user (malloc'd) and *groups (malloc'd,
 * NULL-terminated array of malloc'd strings; free with tls_groups_free)
 * when a certificate was presented and verified; 0 when there is none;
 * SKIFF_ENOMEM. */
int tls_conn_peer_identity(const tls_conn_t *t, char **user, char ***groups);
void tls_groups_free(char **groups);

/* The underlying SSL object (tests, introspection). */
SSL *tls_conn_ssl(tls_conn_t *t);

#endif
