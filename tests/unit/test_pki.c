/* tests/unit/test_pki.c - the cluster PKI: files and their modes, the
 * serving certificate's names, reuse on restart, reissue when the names
 * change or a file is damaged, and the subject of client certificates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <skiff/errors.h>

#include "security/pki.h"

static char tmpdir[256];
static char pkidir[300];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/skiff-pki-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(pkidir, sizeof pkidir, "%s/pki", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static X509 *pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

static mode_t mode_of(const char *name)
{
    char path[400];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", pkidir, name);
    if (stat(path, &st) != 0)
        return (mode_t)-1;
    return st.st_mode & 07777;
}

static char *file_text(const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", pkidir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    fread(buf, 1, 65535, f);
    fclose(f);
    return buf;
}

static int verifies(const char *ca_pem, const char *leaf_pem, int purpose)
{
    X509 *ca = pem_cert(ca_pem), *leaf = pem_cert(leaf_pem);
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_add_cert(st, ca);
    X509_STORE_CTX_init(ctx, st, leaf, NULL);
    X509_STORE_CTX_set_purpose(ctx, purpose);
    int ok = X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    X509_free(ca);
    X509_free(leaf);
    ERR_clear_error();
    return ok;
}

static void subject_entries(X509 *x, int nid, char out[][64], int *n)
{
    X509_NAME *name = X509_get_subject_name(x);
    *n = 0;
    for (int i = -1; (i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0 && *n < 8;) {
        const ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        snprintf(out[*n], 64, "%.*s", ASN1_STRING_length(d),
                 (const char *)ASN1_STRING_get0_data(d));
        (*n)++;
    }
}

static void test_creates_files_0600(void **state)
{
    static const char *const names[] = {"api.example.test", NULL};
    static const char *const ips[] = {"10.1.2.3", "fd00::7", NULL};
    pki_opts_t o = {.extra_names = names, .extra_ips = ips};
    pki_t *p = NULL;
    char err[256];
    assert_int_equal(pki_ensure(pkidir, &o, &p, err, sizeof err), 0);
    assert_int_equal(pki_written(p), PKI_WROTE_CA | PKI_WROTE_SERVER | PKI_WROTE_ADMIN);
    const char *files[] = {PKI_CA_CERT, PKI_CA_KEY, PKI_SERVER_CERT,
                           PKI_SERVER_KEY, PKI_ADMIN_CERT, PKI_ADMIN_KEY};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        assert_int_equal(mode_of(files[i]), 0600);
    struct stat st;
    assert_int_equal(stat(pkidir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* no temporary files left behind */
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", pkidir, PKI_SERVER_KEY);
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* the files hold what the accessors give */
    char *ca = file_text(PKI_CA_CERT);
    assert_non_null(ca);
    assert_string_equal(ca, pki_ca_pem(p));
    free(ca);
    char *key = file_text(PKI_SERVER_KEY);
    assert_non_null(strstr(key, "PRIVATE KEY"));
    free(key);
    pki_free(p);
}

static void test_serving_cert_names(void **state)
{
    static const char *const names[] = {"api.example.test", NULL};
    static const char *const ips[] = {"10.1.2.3", "fd00::7", NULL};
    pki_opts_t o = {.extra_names = names, .extra_ips = ips};
    pki_t *p = NULL;
    char err[256];
    assert_int_equal(pki_ensure(pkidir, &o, &p, err, sizeof err), 0);
    X509 *x = pem_cert(pki_server_cert_pem(p));
    assert_non_null(x);
    assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "api.example.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "other.example.test", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "10.1.2.3", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "fd00:0:0::7", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "10.9.9.9", 0), 0);
    char host[256];
    if (gethostname(host, sizeof host) == 0)
        assert_int_equal(X509_check_host(x, host, 0, 0, NULL), 1);
    /* ECDSA P-256 */
    EVP_PKEY *k = X509_get0_pubkey(x);
    assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
    assert_int_equal(EVP_PKEY_get_bits(k), 256);
    X509_free(x);
    assert_true(verifies(pki_ca_pem(p), pki_server_cert_pem(p), X509_PURPOSE_SSL_SERVER));
    /* a serving certificate is not a client certificate, nor a CA */
    assert_false(verifies(pki_ca_pem(p), pki_server_cert_pem(p), X509_PURPOSE_SSL_CLIENT));
    pki_free(p);
}

static void test_ca_ten_years(void **state)
{
    pki_t *p = NULL;
    char err[256];
    assert_int_equal(pki_ensure(pkidir, NULL, &p, err, sizeof err), 0);
    X509 *ca = pem_cert(pki_ca_pem(p));
    assert_true(X509_check_ca(ca) >= 1);
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(ca)), 1);
    assert_in_range(days, 3640, 3660);
    X509_free(ca);
    pki_free(p);
}

static void test_reload_keeps_everything(void **state)
{
    static const char *const names[] = {"api.example.test", NULL};
    pki_opts_t o = {.extra_names = names, .no_host_names = 1};
    pki_t *a = NULL, *b = NULL;
    char err[256];
    assert_int_equal(pki_ensure(pkidir, &o, &a, err, sizeof err), 0);
    assert_int_equal(pki_ensure(pkidir, &o, &b, err, sizeof err), 0);
    assert_int_equal(pki_written(b), 0);
    assert_string_equal(pki_ca_pem(a), pki_ca_pem(b));
    assert_string_equal(pki_server_cert_pem(a), pki_server_cert_pem(b));
    assert_string_equal(pki_server_key_pem(a), pki_server_key_pem(b));
    assert_string_equal(pki_admin_cert_pem(a), pki_admin_cert_pem(b));
    assert_string_equal(pki_admin_key_pem(a), pki_admin_key_pem(b));
    pki_free(a);
    pki_free(b);
}

static void test_san_change_reissues_serving_cert(void **state)
{
    static const char *const n1[] = {"one.example.test", NULL};
    static const char *const n2[] = {"one.example.test", "two.example.test", NULL};
    pki_opts_t o1 = {.extra_names = n1, .no_host_names = 1};
    pki_opts_t o2 = {.extra_names = n2, .no_host_names = 1};
    pki_t *a = NULL, *b = NULL;
    char err[256];
    assert_int_equal(pki_ensure(pkidir, &o1, &a, err, sizeof err), 0);
    assert_int_equal(pki_ensure(pkidir, &o2, &b, err, sizeof err), 0);
    assert_int_equal(pki_written(b), PKI_WROTE_SERVER);
    assert_string_equal(pki_ca_pem(a), pki_ca_pem(b));
    assert_string_not_equal(pki_server_cert_pem(a), pki_server_cert_pem(b));
    assert_string_equal(pki_admin_cert_pem(a), pki_admin_cert_pem(b));
    X509 *x = pem_cert(pki_server_cert_pem(b));
    assert_int_equal(X509_check_host(x, "two.example.test", 0, 0, NULL), 1);
    X509_free(x);
    assert_int_equal(mode_of(PKI_SERVER_CERT), 0600);
    pki_free(a);
    pki_free(b);
}

static void test_damaged_files_are_replaced(void **state)
{
    pki_opts_t o = {.no_host_names = 1};
    pki_t *a = NULL, *b = NULL;
    char err[256], path[400];
    assert_int_equal(pki_ensure(pkidir, &o, &a, err, sizeof err), 0);
    /* a key that does not match its certificate */
    snprintf(path, sizeof path, "%s/%s", pkidir, PKI_ADMIN_KEY);
    FILE *f = fopen(path, "w");
    fputs(pki_server_key_pem(a), f);
    fclose(f);
    assert_int_equal(pki_ensure(pkidir, &o, &b, err, sizeof err), 0);
    assert_int_equal(pki_written(b), PKI_WROTE_ADMIN);
    assert_int_equal(mode_of(PKI_ADMIN_KEY), 0600);
    pki_free(b);
    /* a damaged CA takes everything signed by it along */
    snprintf(path, sizeof path, "%s/%s", pkidir, PKI_CA_CERT);
    f = fopen(path, "w");
    fputs("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    assert_int_equal(pki_ensure(pkidir, &o, &b, err, sizeof err), 0);
    assert_int_equal(pki_written(b), PKI_WROTE_CA | PKI_WROTE_SERVER | PKI_WROTE_ADMIN);
    assert_string_not_equal(pki_ca_pem(a), pki_ca_pem(b));
    assert_true(verifies(pki_ca_pem(b), pki_admin_cert_pem(b), X509_PURPOSE_SSL_CLIENT));
    assert_false(verifies(pki_ca_pem(a), pki_admin_cert_pem(b), X509_PURPOSE_SSL_CLIENT));
    pki_free(a);
    pki_free(b);
}

static void test_client_cert_subject(void **state)
{
    pki_t *p = NULL;
    char err[256];
    assert_int_equal(pki_ensure(pkidir, &(pki_opts_t){.no_host_names = 1}, &p, err, sizeof err),
                     0);
    char vals[8][64];
    int n;
    X509 *admin = pem_cert(pki_admin_cert_pem(p));
    subject_entries(admin, NID_commonName, vals, &n);
    assert_int_equal(n, 1);
    assert_string_equal(vals[0], "skiff-admin");
    subject_entries(admin, NID_organizationName, vals, &n);
    assert_int_equal(n, 1);
    assert_string_equal(vals[0], "system:masters");
    X509_free(admin);
    assert_true(verifies(pki_ca_pem(p), pki_admin_cert_pem(p), X509_PURPOSE_SSL_CLIENT));

    static const char *const groups[] = {"dev", "ops", NULL};
    char *cpem = NULL, *kpem = NULL;
    assert_int_equal(pki_issue_client(p, "alice", groups, 30, &cpem, &kpem), 0);
    X509 *x = pem_cert(cpem);
    subject_entries(x, NID_commonName, vals, &n);
    assert_int_equal(n, 1);
    assert_string_equal(vals[0], "alice");
    subject_entries(x, NID_organizationName, vals, &n);
    assert_int_equal(n, 2);
    assert_string_equal(vals[0], "dev");
    assert_string_equal(vals[1], "ops");
    /* the key belongs to the certificate */
    BIO *b = BIO_new_mem_buf(kpem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_int_equal(X509_check_private_key(x, k), 1);
    EVP_PKEY_free(k);
    X509_free(x);
    assert_true(verifies(pki_ca_pem(p), cpem, X509_PURPOSE_SSL_CLIENT));
    free(cpem);
    free(kpem);
    assert_int_equal(pki_issue_client(p, "", NULL, 30, &cpem, &kpem), SKIFF_EINVAL);
    pki_free(p);
}

static void test_bad_options(void **state)
{
    static const char *const bad_ip[] = {"10.1.2", NULL};
    static const char *const bad_name[] = {"a,DNS:evil", NULL};
    pki_t *p = (pki_t *)1;
    char err[256] = "";
    assert_int_equal(pki_ensure(pkidir, &(pki_opts_t){.extra_ips = bad_ip}, &p, err, sizeof err),
                     SKIFF_EINVAL);
    assert_null(p);
    assert_non_null(strstr(err, "10.1.2"));
    assert_int_equal(
        pki_ensure(pkidir, &(pki_opts_t){.extra_names = bad_name}, &p, err, sizeof err),
        SKIFF_EINVAL);
    assert_int_equal(pki_ensure(NULL, NULL, &p, err, sizeof err), SKIFF_EINVAL);
}

static void test_base64(void **state)
{
    char *b = pki_base64_new("-----BEGIN X-----\n");
    assert_string_equal(b, "LS0tLS1CRUdJTiBYLS0tLS0K");
    free(b);
    b = pki_base64_new("");
    assert_string_equal(b, "");
    free(b);
}

static void test_server_ctx(void **state)
{
    pki_t *p = NULL;
    char err[256];
    assert_int_equal(pki_ensure(pkidir, &(pki_opts_t){.no_host_names = 1}, &p, err, sizeof err),
                     0);
    SSL_CTX *ctx = pki_server_ctx_new(p, err, sizeof err);
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER);
    assert_int_equal(sk_X509_NAME_num(SSL_CTX_get_client_CA_list(ctx)), 1);
    SSL_CTX_free(ctx);
    pki_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_creates_files_0600, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serving_cert_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_ten_years, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_san_change_reissues_serving_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_files_are_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cert_subject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
        cmocka_unit_test(test_base64),
        cmocka_unit_test_setup_teardown(test_server_ctx, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
