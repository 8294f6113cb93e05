/* core/security/csr.c - parsing, checking and signing certificate signing
 * requests with OpenSSL (see csr.h for the signers' rules). It must not
 * decide who may ask or approve: that is the API server's (core/api/csr.c). */
#include "security/csr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "util/base64.h"

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

static X509_REQ *load_req(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    return req;
}

static int subject_of(X509_REQ *req, csr_subject_t *out)
{
    memset(out, 0, sizeof *out);
    X509_NAME *name = X509_REQ_get_subject_name(req);
    for (int i = 0; i < X509_NAME_entry_count(name); i++) {
        X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        if (nid != NID_commonName && nid != NID_organizationName) continue;
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
        if (n < 0) return -1;
        if ((size_t)n >= sizeof out->cn || memchr(utf8, '\0', (size_t)n)) {
            OPENSSL_free(utf8);
            return -1;
        }
        if (nid == NID_commonName) {
            memcpy(out->cn, utf8, (size_t)n);
            out->cn[n] = '\0';
        } else if (out->norgs < CSR_MAX_ORGS) {
            memcpy(out->orgs[out->norgs], utf8, (size_t)n);
            out->orgs[out->norgs++][n] = '\0';
        }
        OPENSSL_free(utf8);
    }
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name) out->has_sans = 1;
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return 0;
}

int csr_parse(const char *pem, size_t len, csr_subject_t *out, char *err, size_t errlen)
{
    X509_REQ *req = pem && len ? load_req(pem, len) : NULL;
    if (!req) {
        set_err(err, errlen, "PEM block type must be CERTIFICATE REQUEST");
        return -1;
    }
    EVP_PKEY *key = X509_REQ_get0_pubkey(req);
    int rc = -1;
    if (!key || X509_REQ_verify(req, key) != 1) {
        set_err(err, errlen, "the request's signature does not match its public key");
    } else if (subject_of(req, out) != 0) {
        set_err(err, errlen, "the request's subject cannot be read");
    } else {
        rc = 0;
    }
    ERR_clear_error();
    X509_REQ_free(req);
    return rc;
}

/* The PEM text of spec.request (base64 in JSON), newly allocated. */
static char *request_pem(const json_t *spec, size_t *len)
{
    const char *b = json_string_value(json_object_get(spec, "request"));
    if (!b || !*b) return NULL;
    return (char *)base64_decode(b, strlen(b), 0, len);
}

static int has_usage(const json_t *usages, const char *u)
{
    size_t i;
    json_t *v;
    json_array_foreach(usages, i, v) if (json_string_value(v) && !strcmp(json_string_value(v), u)) return 1;
    return 0;
}

/* every usage is one of allowed (NULL-terminated) */
static int usages_within(const json_t *usages, const char *const *allowed)
{
    size_t i;
    json_t *v;
    json_array_foreach(usages, i, v) {
        const char *s = json_string_value(v);
        int ok = 0;
        for (const char *const *a = allowed; s && *a; a++)
            if (!strcmp(*a, s)) ok = 1;
        if (!ok) return 0;
    }
    return 1;
}

static const char *const client_usages[] = {"digital signature", "key encipherment",
                                            "client auth", NULL};

/* The rules of the signer the request names; NULL when they hold, else
 * what is wrong. */
static const char *signer_rule(const char *signer, const csr_subject_t *s, const json_t *usages)
{
    if (!strcmp(signer, CSR_SIGNER_KUBELET_CLIENT)) {
        if (strncmp(s->cn, "system:node:", 12) != 0 || !s->cn[12])
            return "subject common name must begin with \"system:node:\" followed by the node "
                   "name";
        if (s->norgs != 1 || strcmp(s->orgs[0], "system:nodes") != 0)
            return "subject organization must be exactly \"system:nodes\"";
        if (s->has_sans)
            return "subject alternative names are not allowed for this signer";
        if (!has_usage(usages, "digital signature") || !has_usage(usages, "client auth") ||
            !usages_within(usages, client_usages))
            return "usages must be \"digital signature\" and \"client auth\" (and optionally "
                   "\"key encipherment\")";
        return NULL;
    }
    if (!strcmp(signer, CSR_SIGNER_CLIENT)) {
        if (!s->cn[0]) return "subject common name (the user name) is required";
        if (!has_usage(usages, "client auth") || !usages_within(usages, client_usages))
            return "usages must include \"client auth\" and nothing beyond \"digital "
                   "signature\", \"key encipherment\" and \"client auth\"";
        return NULL;
    }
    return NULL;
}

/* domain/path, as Kubernetes validates signerName */
static int signer_name_ok(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/') || strlen(s) > 571) return 0;
    for (const char *p = s; p < slash; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            return 0;
    return strchr(s, '.') != NULL && strchr(s, '.') < slash;
}

int csr_validate_spec(const json_t *spec, char *field, size_t fieldlen, char *msg,
                      size_t msglen)
{
    const char *signer = json_string_value(json_object_get(spec, "signerName"));
    const json_t *usages = json_object_get(spec, "usages");
    const json_t *es = json_object_get(spec, "expirationSeconds");
    if (!signer || !*signer) {
        snprintf(field, fieldlen, "spec.signerName");
        snprintf(msg, msglen, "Required value");
        return -1;
    }
    if (!signer_name_ok(signer)) {
        snprintf(field, fieldlen, "spec.signerName");
        snprintf(msg, msglen,
                 "Invalid value: \"%.300s\": must be a fully qualified domain and path of the "
                 "form 'example.com/signer-name'",
                 signer);
        return -1;
    }
    if (!strcmp(signer, "kubernetes.io/legacy-unknown")) {
        snprintf(field, fieldlen, "spec.signerName");
        snprintf(msg, msglen, "Invalid value: \"%s\": the legacy signerName is not allowed via "
                              "this API version",
                 signer);
        return -1;
    }
    if (json_array_size(usages) == 0) {
        snprintf(field, fieldlen, "spec.usages");
        snprintf(msg, msglen, "Required value: usages must be provided");
        return -1;
    }
    if (es && !json_is_null(es) &&
        (!json_is_integer(es) || json_integer_value(es) < CSR_MIN_SECONDS)) {
        snprintf(field, fieldlen, "spec.expirationSeconds");
        snprintf(msg, msglen,
                 "Invalid value: %lld: may not specify a duration less than 600 seconds (10 "
                 "minutes)",
                 (long long)json_integer_value(es));
        return -1;
    }
    size_t len = 0;
    char *pem = request_pem(spec, &len);
    snprintf(field, fieldlen, "spec.request");
    if (!pem) {
        snprintf(msg, msglen, "Required value: a PEM-encoded PKCS#10 certificate request");
        return -1;
    }
    csr_subject_t s;
    char why[200];
    int rc = csr_parse(pem, len, &s, why, sizeof why);
    free(pem);
    if (rc != 0) {
        snprintf(msg, msglen, "Invalid value: \"<request>\": %s", why);
        return -1;
    }
    const char *bad = signer_rule(signer, &s, usages);
    if (bad) {
        snprintf(msg, msglen, "Invalid value: \"<request>\": signer %s: %s", signer, bad);
        return -1;
    }
    return 0;
}

int csr_is_node_client(const json_t *spec, csr_subject_t *subj)
{
    const char *signer = json_string_value(json_object_get(spec, "signerName"));
    if (!signer || strcmp(signer, CSR_SIGNER_KUBELET_CLIENT) != 0) return 0;
    size_t len = 0;
    char *pem = request_pem(spec, &len);
    csr_subject_t s;
    int ok = pem && csr_parse(pem, len, &s, NULL, 0) == 0 &&
             !signer_rule(signer, &s, json_object_get(spec, "usages"));
    free(pem);
    if (ok && subj) *subj = s;
    return ok;
}

int csr_signer_is_ours(const char *signer)
{
    return signer && (!strcmp(signer, CSR_SIGNER_KUBELET_CLIENT) || !strcmp(signer, CSR_SIGNER_CLIENT));
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext) return -1;
    int ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* keyUsage and extendedKeyUsage values from the API's usage names */
static void usage_exts(const json_t *usages, char *ku, size_t kun, char *eku, size_t ekun)
{
    static const struct {
        const char *api, *ossl;
        int ext;
    } map[] = {
        {"digital signature", "digitalSignature", 0}, {"key encipherment", "keyEncipherment", 0},
        {"content commitment", "nonRepudiation", 0},  {"key agreement", "keyAgreement", 0},
        {"data encipherment", "dataEncipherment", 0}, {"client auth", "clientAuth", 1},
        {"server auth", "serverAuth", 1},             {"code signing", "codeSigning", 1},
        {"email protection", "emailProtection", 1},   {"timestamping", "timeStamping", 1},
        {"ocsp signing", "OCSPSigning", 1},
    };
    snprintf(ku, kun, "critical");
    eku[0] = '\0';
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        if (!has_usage(usages, map[i].api)) continue;
        char *dst = map[i].ext ? eku : ku;
        size_t n = map[i].ext ? ekun : kun, l = strlen(dst);
        snprintf(dst + l, n - l, "%s%s", l ? "," : "", map[i].ossl);
    }
}

int csr_sign(X509 *ca, EVP_PKEY *ca_key, const json_t *spec, char **cert_pem, char *err,
             size_t errlen)
{
    *cert_pem = NULL;
    size_t len = 0;
    char *pem = request_pem(spec, &len);
    X509_REQ *req = pem ? load_req(pem, len) : NULL;
    free(pem);
    if (!req) {
        set_err(err, errlen, "the request is not a PEM certificate request");
        return -1;
    }
    long long secs = CSR_MAX_SECONDS;
    const json_t *es = json_object_get(spec, "expirationSeconds");
    if (json_is_integer(es)) secs = json_integer_value(es);
    if (secs > CSR_MAX_SECONDS) secs = CSR_MAX_SECONDS;
    if (secs < CSR_MIN_SECONDS) secs = CSR_MIN_SECONDS;
    const json_t *usages = json_object_get(spec, "usages");
    char ku[200], eku[200];
    usage_exts(usages, ku, sizeof ku, eku, sizeof eku);

    int rc = -1;
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    EVP_PKEY *key = X509_REQ_get0_pubkey(req);
    if (!x || !serial || !key || X509_REQ_verify(req, key) != 1) {
        set_err(err, errlen, "the request's signature does not match its public key");
        goto out;
    }
    /* Backdated five minutes, as Kubernetes' signer does, for peers whose
     * clock is a little behind; the end is counted from now. */
    if (X509_set_version(x, X509_VERSION_3) != 1 ||
        BN_rand(serial, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -300) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)secs) ||
        X509_set_subject_name(x, X509_REQ_get_subject_name(req)) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 || X509_set_pubkey(x, key) != 1 ||
        add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        (strlen(ku) > 8 && add_ext(x, ca, NID_key_usage, ku) < 0) ||
        (eku[0] && add_ext(x, ca, NID_ext_key_usage, eku) < 0) ||
        add_ext(x, ca, NID_authority_key_identifier, "keyid:always") < 0 ||
        X509_sign(x, ca_key, EVP_sha256()) <= 0) {
        set_err(err, errlen, "the certificate could not be made");
        goto out;
    }
    BIO *b = BIO_new(BIO_s_mem());
    if (b && PEM_write_bio_X509(b, x) == 1) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        *cert_pem = malloc((size_t)n + 1);
        if (*cert_pem) {
            memcpy(*cert_pem, data, (size_t)n);
            (*cert_pem)[n] = '\0';
            rc = 0;
        }
    }
    BIO_free(b);
    if (rc != 0) set_err(err, errlen, "out of memory");
out:
    ERR_clear_error();
    BN_free(serial);
    X509_free(x);
    X509_REQ_free(req);
    return rc;
}
