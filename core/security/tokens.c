/* core/security/tokens.c - static bearer tokens and ServiceAccount JWTs (ES256). */
#include "security/tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "util/base64.h"
#include "util/strmap.h"

typedef struct static_token {
    token_identity_t id;
} static_token_t;

struct tokens {
    EVP_PKEY *key;
    char kid[64];
    char *issuer;
    char *jwks;
    char *openid;
    strmap_t *statics; /* token -> static_token_t* */
};



/* ---- the signing key ---------------------------------------------------------- */

static EVP_PKEY *load_or_create_key(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f) {
        EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (!k) snprintf(err, errlen, "%s: not a PEM private key", path);
        return k;
    }
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (!k) {
        snprintf(err, errlen, "cannot generate the service account signing key");
        return NULL;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    int ok = out && PEM_write_PrivateKey(out, k, NULL, NULL, 0, NULL, NULL) == 1;
    if (out) ok = fclose(out) == 0 && ok;
    else if (fd >= 0) close(fd);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

/* JWK of the public key and its key id (RFC 7638 thumbprint). */
static int make_jwks(tokens_t *t)
{
    unsigned char x[32], y[32];
    BIGNUM *bx = NULL, *by = NULL;
    if (!EVP_PKEY_get_bn_param(t->key, OSSL_PKEY_PARAM_EC_PUB_X, &bx) ||
        !EVP_PKEY_get_bn_param(t->key, OSSL_PKEY_PARAM_EC_PUB_Y, &by) ||
        BN_bn2binpad(bx, x, 32) != 32 || BN_bn2binpad(by, y, 32) != 32) {
        BN_free(bx);
        BN_free(by);
        return -1;
    }
    BN_free(bx);
    BN_free(by);
    char *xs = base64_encode(x, 32, 1), *ys = base64_encode(y, 32, 1);
    char thumb_in[256];
    snprintf(thumb_in, sizeof thumb_in, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
             xs ? xs : "", ys ? ys : "");
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)thumb_in, strlen(thumb_in), digest);
    char *kid = base64_encode(digest, sizeof digest, 1);
    if (!xs || !ys || !kid) {
        free(xs);
        free(ys);
        free(kid);
        return -1;
    }
    snprintf(t->kid, sizeof t->kid, "%s", kid);
    json_t *jwks = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}]}", "keys", "use", "sig",
                             "kty", "EC", "kid", kid, "crv", "P-256", "alg", "ES256", "x", xs,
                             "y", ys);
    free(xs);
    free(ys);
    free(kid);
    t->jwks = json_dumps(jwks, JSON_COMPACT);
    json_decref(jwks);
    char jwks_uri[600];
    snprintf(jwks_uri, sizeof jwks_uri, "%s/openid/v1/jwks", t->issuer);
    json_t *oc = json_pack("{s:s, s:s, s:[s], s:[s], s:[s]}", "issuer", t->issuer, "jwks_uri",
                           jwks_uri, "response_types_supported", "id_token",
                           "subject_types_supported", "public",
                           "id_token_signing_alg_values_supported", "ES256");
    t->openid = json_dumps(oc, JSON_COMPACT);
    json_decref(oc);
    return t->jwks && t->openid ? 0 : -1;
}

/* ---- static token file --------------------------------------------------------- */

/* One CSV field (quotes allowed, as Kubernetes' token file has them). */
static const char *csv_field(const char *p, char *out, size_t outlen)
{
    size_t n = 0;
    int quoted = *p == '"';
    if (quoted) p++;
    while (*p && (quoted ? *p != '"' : *p != ',') && *p != '\n' && *p != '\r') {
        if (n + 1 < outlen) out[n++] = *p;
        p++;
    }
    out[n] = '\0';
    if (quoted && *p == '"') p++;
    if (*p == ',') p++;
    return p;
}

static int load_token_file(tokens_t *t, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the token file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t ll = strlen(line);
        if (ll == sizeof line - 1 && line[ll - 1] != '\n') {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        if (line[0] == '\n' || line[0] == '\r' || line[0] == '#') continue;
        char token[512], user[256], uid[64], groups[1024];
        const char *p = csv_field(line, token, sizeof token);
        p = csv_field(p, user, sizeof user);
        p = csv_field(p, uid, sizeof uid);
        csv_field(p, groups, sizeof groups);
        if (!token[0] || !user[0] || !uid[0]) {
            snprintf(err, errlen, "%s:%d: expected token,user,uid[,\"group1,group2\"]", path,
                     lineno);
            rc = -1;
            break;
        }
        static_token_t *st = calloc(1, sizeof *st);
        if (!st) {
            rc = -1;
            break;
        }
        snprintf(st->id.user, sizeof st->id.user, "%s", user);
        snprintf(st->id.uid, sizeof st->id.uid, "%s", uid);
        snprintf(st->id.groups_buf, sizeof st->id.groups_buf, "%s", groups);
        for (char *g = st->id.groups_buf, *save = NULL; st->id.ngroups < TOKENS_MAX_GROUPS;) {
            char *tok = strtok_r(g, ",", &save);
            g = NULL;
            if (!tok) break;
            st->id.groups[st->id.ngroups++] = tok;
        }
        st->id.groups[st->id.ngroups] = NULL;
        free(strmap_put(t->statics, token, st));
    }
    fclose(f);
    return rc;
}

static void free_static(void *v) { free(v); }

int tokens_new(const char *key_path, const char *token_file, const char *issuer, tokens_t **out,
               char *err, size_t errlen)
{
    tokens_t *t = calloc(1, sizeof *t);
    if (!t) return -1;
    t->statics = strmap_new();
    t->issuer = strdup(issuer);
    if (!t->statics || !t->issuer) goto fail;
    t->key = load_or_create_key(key_path, err, errlen);
    if (!t->key) goto fail;
    if (make_jwks(t) != 0) {
        snprintf(err, errlen, "cannot publish the service account key");
        goto fail;
    }
    if (token_file && load_token_file(t, token_file, err, errlen) != 0) goto fail;
    *out = t;
    return 0;
fail:
    tokens_free(t);
    return -1;
}

void tokens_free(tokens_t *t)
{
    if (!t) return;
    EVP_PKEY_free(t->key);
    strmap_free(t->statics, free_static);
    free(t->issuer);
    free(t->jwks);
    free(t->openid);
    free(t);
}

const char *tokens_openid_configuration(const tokens_t *t) { return t->openid; }
const char *tokens_jwks(const tokens_t *t) { return t->jwks; }

/* ---- JWT ------------------------------------------------------------------------ */

char *tokens_issue(const tokens_t *t, const char *ns, const char *name, const char *uid,
                   const char *const *audiences, int64_t expiration_seconds, int64_t *exp_out)
{
    int64_t now = (int64_t)time(NULL);
    int64_t exp = now + (expiration_seconds > 0 ? expiration_seconds : 3600);
    json_t *aud = json_array();
    for (size_t i = 0; audiences && audiences[i]; i++)
        json_array_append_new(aud, json_string(audiences[i]));
    if (json_array_size(aud) == 0) json_array_append_new(aud, json_string(t->issuer));
    char sub[600];
    snprintf(sub, sizeof sub, "system:serviceaccount:%s:%s", ns, name);
    char jti[40];
    unsigned char rnd[16];
    RAND_bytes(rnd, sizeof rnd);
    for (int i = 0; i < 16; i++) snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
    json_t *claims = json_pack("{s:o, s:I, s:I, s:s, s:s, s:I, s:s, s:{s:s, s:{s:s, s:s}}}",
                               "aud", aud, "exp", (json_int_t)exp, "iat", (json_int_t)now,
                               "iss", t->issuer, "jti", jti, "nbf", (json_int_t)now, "sub", sub,
                               "kubernetes.io", "namespace", ns, "serviceaccount", "name", name,
                               "uid", uid);
    json_t *header = json_pack("{s:s, s:s}", "alg", "ES256", "kid", t->kid);
    char *hs = json_dumps(header, JSON_COMPACT), *cs = json_dumps(claims, JSON_COMPACT);
    json_decref(header);
    json_decref(claims);
    char *h64 = hs ? base64_encode(hs, strlen(hs), 1) : NULL;
    char *c64 = cs ? base64_encode(cs, strlen(cs), 1) : NULL;
    free(hs);
    free(cs);
    char *out = NULL;
    if (!h64 || !c64) goto done;
    size_t slen = strlen(h64) + 1 + strlen(c64);
    char *signing = malloc(slen + 1);
    if (!signing) goto done;
    snprintf(signing, slen + 1, "%s.%s", h64, c64);
    /* ES256: the signature is r || s, 32 bytes each (not DER) */
    unsigned char der[80], raw[64];
    size_t derlen = sizeof der;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, t->key) == 1 &&
             EVP_DigestSign(md, der, &derlen, (unsigned char *)signing, slen) == 1;
    EVP_MD_CTX_free(md);
    const unsigned char *dp = der;
    ECDSA_SIG *sig = ok ? d2i_ECDSA_SIG(NULL, &dp, (long)derlen) : NULL;
    if (sig) {
        /* issue the low-s form, the only one verification accepts */
        const BIGNUM *sr = ECDSA_SIG_get0_s(sig);
        BIGNUM *n = BN_new(), *half = BN_new();
        EC_GROUP *grp = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
        if (n && half && grp && EC_GROUP_get_order(grp, n, NULL) && BN_rshift1(half, n) &&
            BN_cmp(sr, half) > 0) {
            BIGNUM *ns = BN_new();
            BIGNUM *nr = BN_dup(ECDSA_SIG_get0_r(sig));
            if (ns && nr && BN_sub(ns, n, sr)) ECDSA_SIG_set0(sig, nr, ns);
            else {
                BN_free(ns);
                BN_free(nr);
            }
        }
        EC_GROUP_free(grp);
        BN_free(n);
        BN_free(half);
    }
    if (sig && BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
        BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32) {
        char *s64 = base64_encode(raw, sizeof raw, 1);
        if (s64) {
            size_t n = slen + 1 + strlen(s64) + 1;
            out = malloc(n);
            if (out) snprintf(out, n, "%s.%s", signing, s64);
            free(s64);
        }
    }
    ECDSA_SIG_free(sig);
    free(signing);
    if (exp_out) *exp_out = exp;
done:
    free(h64);
    free(c64);
    return out;
}

static int canonical(const char *text, size_t n, const unsigned char *bytes, size_t len)
{
    char *again = base64_encode(bytes, len, 1);
    int same = again && strlen(again) == n && memcmp(again, text, n) == 0;
    free(again);
    return same;
}

static int verify_es256(const tokens_t *t, const char *signing, size_t slen,
                        const unsigned char *raw, size_t rawlen)
{
    if (rawlen != 64) return 0;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    /* low-s only: (r, n - s) is the same signature spelled another way */
    static const unsigned char half_order[32] = {
        0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8};
    BIGNUM *half = BN_bin2bn(half_order, 32, NULL);
    int high = !half || !s || BN_cmp(s, half) > 0;
    BN_free(half);
    if (high) {
        ECDSA_SIG_free(sig);
        BN_free(r);
        BN_free(s);
        return 0;
    }
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        ECDSA_SIG_free(sig);
        BN_free(r);
        BN_free(s);
        return 0;
    }
    unsigned char *der = NULL;
    int derlen = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    if (derlen <= 0) return 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, t->key) == 1 &&
             EVP_DigestVerify(md, der, (size_t)derlen, (const unsigned char *)signing, slen) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok;
}

static int set_identity(token_identity_t *out, const char *user, const char *uid,
                        const char *const *groups)
{
    memset(out, 0, sizeof *out);
    snprintf(out->user, sizeof out->user, "%s", user);
    snprintf(out->uid, sizeof out->uid, "%s", uid ? uid : "");
    size_t off = 0;
    for (size_t i = 0; groups && groups[i] && out->ngroups < TOKENS_MAX_GROUPS; i++) {
        size_t n = strlen(groups[i]);
        if (off + n + 1 > sizeof out->groups_buf) break;
        memcpy(out->groups_buf + off, groups[i], n + 1);
        out->groups[out->ngroups++] = out->groups_buf + off;
        off += n + 1;
    }
    out->groups[out->ngroups] = NULL;
    return 0;
}

int tokens_authenticate(const tokens_t *t, const char *token, tokens_sa_exists_fn exists,
                        void *data, token_identity_t *out, char *err, size_t errlen)
{
    static_token_t *st = strmap_get(t->statics, token);
    if (st) {
        *out = st->id;
        /* groups point into the copy's own buffer */
        for (size_t i = 0; i < out->ngroups; i++)
            out->groups[i] = out->groups_buf + (st->id.groups[i] - st->id.groups_buf);
        return 0;
    }
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.')) {
        snprintf(err, errlen, "the token is not a known token and not a JWT");
        return -1;
    }
    size_t hl, cl, sl;
    unsigned char *h = base64_decode(token, (size_t)(d1 - token), 1, &hl);
    unsigned char *c = base64_decode(d1 + 1, (size_t)(d2 - d1 - 1), 1, &cl);
    unsigned char *s = base64_decode(d2 + 1, strlen(d2 + 1), 1, &sl);
    /* one token, one spelling: each part must be the canonical encoding of
     * what it decodes to (no padding, no stray bits) */
    if (h && c && s &&
        (!canonical(token, (size_t)(d1 - token), h, hl) ||
         !canonical(d1 + 1, (size_t)(d2 - d1 - 1), c, cl) || !canonical(d2 + 1, strlen(d2 + 1), s, sl))) {
        free(h);
        free(c);
        free(s);
        h = c = s = NULL;
    }
    json_t *hj = h ? json_loadb((char *)h, hl, 0, NULL) : NULL;
    json_t *cj = c ? json_loadb((char *)c, cl, 0, NULL) : NULL;
    int rc = -1;
    if (!hj || !cj || !s) {
        snprintf(err, errlen, "malformed JWT");
        goto done;
    }
    const char *alg = json_string_value(json_object_get(hj, "alg"));
    if (!alg || strcmp(alg, "ES256") != 0 ||
        !verify_es256(t, token, (size_t)(d2 - token), s, sl)) {
        snprintf(err, errlen, "invalid signature");
        goto done;
    }
    const char *iss = json_string_value(json_object_get(cj, "iss"));
    if (!iss || strcmp(iss, t->issuer) != 0) {
        snprintf(err, errlen, "the token was not issued by this cluster");
        goto done;
    }
    int64_t now = (int64_t)time(NULL);
    json_int_t exp = json_integer_value(json_object_get(cj, "exp"));
    json_int_t nbf = json_integer_value(json_object_get(cj, "nbf"));
    if (exp <= now) {
        snprintf(err, errlen, "the token has expired");
        goto done;
    }
    if (nbf > now + 60) {
        snprintf(err, errlen, "the token is not valid yet");
        goto done;
    }
    /* audience: the API server accepts tokens meant for it (its issuer) */
    int aud_ok = 0;
    json_t *aud = json_object_get(cj, "aud");
    size_t i;
    json_t *a;
    if (json_is_string(aud)) aud_ok = strcmp(json_string_value(aud), t->issuer) == 0;
    json_array_foreach(aud, i, a) if (json_string_value(a) && !strcmp(json_string_value(a), t->issuer)) aud_ok = 1;
    if (!aud_ok) {
        snprintf(err, errlen, "the token is not meant for this API server (audience)");
        goto done;
    }
    json_t *k8s = json_object_get(cj, "kubernetes.io");
    const char *ns = json_string_value(json_object_get(k8s, "namespace"));
    json_t *sa = json_object_get(k8s, "serviceaccount");
    const char *name = json_string_value(json_object_get(sa, "name"));
    const char *uid = json_string_value(json_object_get(sa, "uid"));
    if (!ns || !name || !uid) {
        snprintf(err, errlen, "the token names no service account");
        goto done;
    }
    if (exists && !exists(data, ns, name, uid)) {
        snprintf(err, errlen, "the service account %s/%s no longer exists", ns, name);
        goto done;
    }
    char user[600], nsgroup[300];
    snprintf(user, sizeof user, "system:serviceaccount:%s:%s", ns, name);
    snprintf(nsgroup, sizeof nsgroup, "system:serviceaccounts:%s", ns);
    const char *groups[] = {"system:serviceaccounts", nsgroup, NULL};
    set_identity(out, user, uid, groups);
    rc = 0;
done:
    json_decref(hj);
    json_decref(cj);
    free(h);
    free(c);
    free(s);
    return rc;
}
