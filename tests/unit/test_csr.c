/* tests/unit/test_csr.c - certificate signing requests without a server:
 * a CSR's spec checked against the built-in signers' rules (subject,
 * usages, expirationSeconds, a forged signature), recognising a kubelet
 * client request, and signing with a CA (subject, usages, lifetime capped
 * to a year, chain verifies). The API side is tested end to end in
 * tests/e2e/test_join.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "security/csr.h"
#include "util/base64.h"

static EVP_PKEY *key_new(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* A PEM CSR for cn and orgs (NULL-terminated), with a DNS SAN if san. */
static char *make_csr(const char *cn, const char *const *orgs, const char *san)
{
    EVP_PKEY *k = key_new();
    X509_REQ *r = X509_REQ_new();
    X509_NAME *n = X509_REQ_get_subject_name(r);
    for (const char *const *o = orgs; o && *o; o++)
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)*o, -1, -1, 0);
    if (cn) X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    if (san) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san));
        X509_REQ_add_extensions(r, exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    X509_REQ_set_pubkey(r, k);
    X509_REQ_sign(r, k, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(b, r);
    char *data;
    long len = BIO_get_mem_data(b, &data);
    char *out = strndup(data, (size_t)len);
    BIO_free(b);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    return out;
}

static json_t *spec_for(const char *pem, const char *signer, const char *usages)
{
    char *b64 = base64_encode(pem, strlen(pem), 0);
    json_t *u = json_array();
    char buf[200];
    snprintf(buf, sizeof buf, "%s", usages);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(u, json_string(t));
    json_t *spec = json_pack("{s:s, s:s, s:o}", "request", b64, "signerName", signer, "usages", u);
    free(b64);
    return spec;
}

static int check(const char *cn, const char *const *orgs, const char *san, const char *signer,
                 const char *usages, char *field, char *msg)
{
    char *pem = make_csr(cn, orgs, san);
    json_t *spec = spec_for(pem, signer, usages);
    int rc = csr_validate_spec(spec, field, 64, msg, 700);
    json_decref(spec);
    free(pem);
    return rc;
}

static const char *const nodes[] = {"system:nodes", NULL};
static const char *const devs[] = {"dev", "ops", NULL};

static void test_node_client_rules(void **state)
{
    (void)state;
    char f[64], m[700];
    assert_int_equal(check("system:node:n1", nodes, NULL, CSR_SIGNER_KUBELET_CLIENT,
                           "digital signature,client auth", f, m), 0);
    assert_int_equal(check("system:node:n1", nodes, NULL, CSR_SIGNER_KUBELET_CLIENT,
                           "digital signature,key encipherment,client auth", f, m), 0);
    assert_int_equal(check("alice", nodes, NULL, CSR_SIGNER_KUBELET_CLIENT,
                           "digital signature,client auth", f, m), -1);
    assert_string_equal(f, "spec.request");
    assert_non_null(strstr(m, "system:node:"));
    assert_int_equal(check("system:node:n1", devs, NULL, CSR_SIGNER_KUBELET_CLIENT,
                           "digital signature,client auth", f, m), -1);
    assert_non_null(strstr(m, "system:nodes"));
    assert_int_equal(check("system:node:n1", nodes, "DNS:n1.example.com",
                           CSR_SIGNER_KUBELET_CLIENT, "digital signature,client auth", f, m), -1);
    assert_int_equal(check("system:node:n1", nodes, NULL, CSR_SIGNER_KUBELET_CLIENT,
                           "digital signature,client auth,server auth", f, m), -1);
    assert_non_null(strstr(m, "usages"));
}

static void test_client_rules(void **state)
{
    (void)state;
    char f[64], m[700];
    assert_int_equal(check("alice", devs, NULL, CSR_SIGNER_CLIENT, "client auth", f, m), 0);
    assert_int_equal(check("alice", devs, NULL, CSR_SIGNER_CLIENT, "server auth", f, m), -1);
    assert_int_equal(check(NULL, devs, NULL, CSR_SIGNER_CLIENT, "client auth", f, m), -1);
    /* other signers keep their own rules: only the request's form is checked */
    assert_int_equal(check(NULL, NULL, "DNS:x", "example.com/mine", "server auth", f, m), 0);
    assert_int_equal(check("a", NULL, NULL, "no-domain", "client auth", f, m), -1);
    assert_string_equal(f, "spec.signerName");
    assert_int_equal(check("a", NULL, NULL, "kubernetes.io/legacy-unknown", "client auth", f, m),
                     -1);
}

static void test_spec_fields(void **state)
{
    (void)state;
    char f[64], m[700];
    char *pem = make_csr("alice", NULL, NULL);
    json_t *spec = spec_for(pem, CSR_SIGNER_CLIENT, "client auth");
    json_object_set_new(spec, "expirationSeconds", json_integer(599));
    assert_int_equal(csr_validate_spec(spec, f, sizeof f, m, sizeof m), -1);
    assert_string_equal(f, "spec.expirationSeconds");
    json_object_set_new(spec, "expirationSeconds", json_integer(600));
    assert_int_equal(csr_validate_spec(spec, f, sizeof f, m, sizeof m), 0);
    json_object_set_new(spec, "usages", json_array());
    assert_int_equal(csr_validate_spec(spec, f, sizeof f, m, sizeof m), -1);
    assert_string_equal(f, "spec.usages");
    json_object_set_new(spec, "usages", json_pack("[s]", "client auth"));
    /* not a CSR at all */
    json_object_set_new(spec, "request", json_string("aGVsbG8="));
    assert_int_equal(csr_validate_spec(spec, f, sizeof f, m, sizeof m), -1);
    assert_string_equal(f, "spec.request");
    /* a forged signature: one byte of the signature flipped */
    char *bad = strdup(pem);
    char *end = strstr(bad, "-----END");
    end[-6] = end[-6] == 'A' ? 'B' : 'A';
    char *b64 = base64_encode(bad, strlen(bad), 0);
    json_object_set_new(spec, "request", json_string(b64));
    assert_int_equal(csr_validate_spec(spec, f, sizeof f, m, sizeof m), -1);
    free(b64);
    free(bad);
    json_decref(spec);
    free(pem);
}

static void test_is_node_client(void **state)
{
    (void)state;
    char *pem = make_csr("system:node:n7", nodes, NULL);
    json_t *spec = spec_for(pem, CSR_SIGNER_KUBELET_CLIENT, "digital signature,client auth");
    csr_subject_t s;
    assert_int_equal(csr_is_node_client(spec, &s), 1);
    assert_string_equal(s.cn, "system:node:n7");
    json_object_set_new(spec, "signerName", json_string(CSR_SIGNER_CLIENT));
    assert_int_equal(csr_is_node_client(spec, NULL), 0);
    json_decref(spec);
    free(pem);
    assert_int_equal(csr_signer_is_ours(CSR_SIGNER_CLIENT), 1);
    assert_int_equal(csr_signer_is_ours("kubernetes.io/kubelet-serving"), 0);
}

/* a self-signed CA */
static X509 *make_ca(EVP_PKEY *k)
{
    X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                               (const unsigned char *)"test-ca", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, k);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    X509_sign(x, k, EVP_sha256());
    return x;
}

static X509 *sign_one(X509 *ca, EVP_PKEY *cak, json_t *spec)
{
    char *pem = NULL, err[200];
    assert_int_equal(csr_sign(ca, cak, spec, &pem, err, sizeof err), 0);
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pem);
    assert_non_null(x);
    return x;
}

static long long lifetime(X509 *x)
{
    int days, secs;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x));
    return (long long)days * 86400 + secs;
}

static void test_sign(void **state)
{
    (void)state;
    EVP_PKEY *cak = key_new();
    X509 *ca = make_ca(cak);
    char *pem = make_csr("alice", devs, NULL);
    json_t *spec = spec_for(pem, CSR_SIGNER_CLIENT, "digital signature,client auth");
    json_object_set_new(spec, "expirationSeconds", json_integer(3600));
    X509 *x = sign_one(ca, cak, spec);
    /* subject as asked; issued by the CA; verifies against it */
    char buf[256];
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
    assert_string_equal(buf, "alice");
    assert_int_equal(X509_check_issued(ca, x), X509_V_OK);
    assert_int_equal(X509_verify(x, cak), 1);
    /* client auth only, not a CA */
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    assert_false(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
    assert_int_equal(X509_check_ca(x), 0);
    /* an hour, plus the five minutes of backdating */
    assert_int_equal(lifetime(x), 3600 + 300);
    X509_free(x);
    /* more than a year is capped at a year; unset is a year */
    json_object_set_new(spec, "expirationSeconds", json_integer(10LL * 365 * 86400));
    x = sign_one(ca, cak, spec);
    assert_int_equal(lifetime(x), CSR_MAX_SECONDS + 300);
    X509_free(x);
    json_object_del(spec, "expirationSeconds");
    x = sign_one(ca, cak, spec);
    assert_int_equal(lifetime(x), CSR_MAX_SECONDS + 300);
    X509_free(x);
    /* a request that is not one is refused */
    json_object_set_new(spec, "request", json_string("aGVsbG8="));
    char *out = NULL, err[200];
    assert_int_equal(csr_sign(ca, cak, spec, &out, err, sizeof err), -1);
    assert_null(out);
    json_decref(spec);
    free(pem);
    X509_free(ca);
    EVP_PKEY_free(cak);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_client_rules), cmocka_unit_test(test_client_rules),
        cmocka_unit_test(test_spec_fields),       cmocka_unit_test(test_is_node_client),
        cmocka_unit_test(test_sign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
