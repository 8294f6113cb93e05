/* tests/unit/test_tls.c - TLS: the memory-BIO engine on its own, then the
 * HTTP server and client over TLS on the libuv loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <skiff/errors.h>

#include "http/tls.h"
#include "security/pki.h"

static char tmpdir[256];
static pki_t *pki;

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/skiff-tls-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    char dir[300], err[256];
    snprintf(dir, sizeof dir, "%s/pki", tmpdir);
    return pki_ensure(dir, &(pki_opts_t){.no_host_names = 1}, &pki, err, sizeof err);
}

static int group_teardown(void **state)
{
    pki_free(pki);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Moves ciphertext from one engine to the other; returns bytes moved. */
static size_t pump(tls_conn_t *from, tls_conn_t *to)
{
    char buf[65536];
    size_t moved = 0, n;
    while ((n = tls_conn_out_take(from, buf, sizeof buf)) > 0) {
        assert_int_equal(tls_conn_feed(to, buf, n), 0);
        moved += n;
    }
    return moved;
}

/* Runs the handshake in memory; returns the server side's last result. */
static int handshake(tls_conn_t *cli, tls_conn_t *srv)
{
    int rs = 0, rc = 0;
    for (int i = 0; i < 10 && !(tls_conn_ready(cli) && tls_conn_ready(srv)); i++) {
        rc = tls_conn_handshake(cli);
        pump(cli, srv);
        rs = tls_conn_handshake(srv);
        pump(srv, cli);
        if (rc < 0 || rs < 0)
            break;
    }
    return rs < 0 ? rs : rc;
}

static void test_engine_in_memory(void **state)
{
    char err[256];
    SSL_CTX *sctx = pki_server_ctx_new(pki, err, sizeof err);
    char *cpem, *kpem;
    static const char *const groups[] = {"dev", "ops", NULL};
    assert_int_equal(pki_issue_client(pki, "alice", groups, 1, &cpem, &kpem), 0);
    SSL_CTX *cctx = tls_client_ctx_new(
        &(tls_client_opts_t){.ca_pem = pki_ca_pem(pki), .cert_pem = cpem, .key_pem = kpem}, err,
        sizeof err);
    assert_non_null(sctx);
    assert_non_null(cctx);
    tls_conn_t *cli, *srv;
    assert_int_equal(tls_conn_new(cctx, 0, "localhost", &cli), 0);
    assert_int_equal(tls_conn_new(sctx, 1, NULL, &srv), 0);
    assert_int_equal(handshake(cli, srv), 0);
    assert_true(tls_conn_ready(cli));
    assert_true(tls_conn_ready(srv));
    uv_buf_t b[2] = {uv_buf_init("hello ", 6), uv_buf_init("world", 5)};
    assert_int_equal(tls_conn_writev(cli, b, 2), 0);
    pump(cli, srv);
    char got[64];
    size_t n = 0;
    assert_int_equal(tls_conn_read(srv, got, sizeof got, &n), TLS_OK);
    assert_int_equal(n, 11);
    assert_memory_equal(got, "hello world", 11);
    char *user;
    char **gr;
    assert_int_equal(tls_conn_peer_identity(srv, &user, &gr), 1);
    assert_string_equal(user, "alice");
    assert_string_equal(gr[0], "dev");
    assert_string_equal(gr[1], "ops");
    assert_null(gr[2]);
    free(user);
    tls_groups_free(gr);
    /* close_notify reaches the other side as TLS_CLOSED */
    tls_conn_shutdown(cli);
    pump(cli, srv);
    assert_int_equal(tls_conn_read(srv, got, sizeof got, &n), TLS_CLOSED);
    tls_conn_free(cli);
    tls_conn_free(srv);
    free(cpem);
    free(kpem);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static void test_engine_wrong_name(void **state)
{
    char err[256];
    SSL_CTX *sctx = pki_server_ctx_new(pki, err, sizeof err);
    SSL_CTX *cctx = tls_client_ctx_new(&(tls_client_opts_t){.ca_pem = pki_ca_pem(pki)}, err,
                                       sizeof err);
    tls_conn_t *cli, *srv;
    assert_int_equal(tls_conn_new(cctx, 0, "not-this-host.example", &cli), 0);
    assert_int_equal(tls_conn_new(sctx, 1, NULL, &srv), 0);
    assert_int_equal(handshake(cli, srv), SKIFF_EIO);
    assert_non_null(strstr(tls_conn_error(cli), "hostname mismatch"));
    tls_conn_free(cli);
    tls_conn_free(srv);
    /* the right IP address passes, another one does not */
    assert_int_equal(tls_conn_new(cctx, 0, "127.0.0.1", &cli), 0);
    assert_int_equal(tls_conn_new(sctx, 1, NULL, &srv), 0);
    assert_int_equal(handshake(cli, srv), 0);
    tls_conn_free(cli);
    tls_conn_free(srv);
    assert_int_equal(tls_conn_new(cctx, 0, "10.99.0.1", &cli), 0);
    assert_int_equal(tls_conn_new(sctx, 1, NULL, &srv), 0);
    assert_int_equal(handshake(cli, srv), SKIFF_EIO);
    tls_conn_free(cli);
    tls_conn_free(srv);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_in_memory),
        cmocka_unit_test(test_engine_wrong_name),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
