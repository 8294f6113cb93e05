/* core/security/pki.c - the cluster CA, the serving certificate and client
 * certificates, kept as PEM files (mode 0600) in one directory.
 *
 * Keys are ECDSA P-256, certificates are signed with SHA-256, through
 * OpenSSL 3's EVP and X509 interfaces (no deprecated calls). A file is
 * written to a temporary name created 0600 with O_EXCL and renamed, so a
 * key is never readable by others, not even for a moment, and a crash
 * leaves either the old file or the new one. This file does no networking;
 * core/http/tls.c turns the result into TLS contexts. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <skiff/errors.h>

#include "http/tls.h"
#include "security/pki.h"

#define PKI_CA_DAYS 3650
#define PKI_LEAF_DAYS 365
/* Certificates with less than this left are reissued at start. */
#define PKI_RENEW_DAYS 30
#define PKI_MAX_FILE ((size_t)1 << 20)
#define PKI_SERVER_CN "skiff-apiserver"
#define PKI_CA_CN "skiff-ca"

struct pki {
    X509 *ca;
    EVP_PKEY *ca_key;
    char *ca_pem;
    char *server_cert_pem, *server_key_pem;
    char *admin_cert_pem, *admin_key_pem;
    int written;
};

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist_t;

/* ---- small helpers ------------------------------------------------------- */

static void fail_msg(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (!err || !errlen)
        return;
    char ossl[160] = "";
    unsigned long e = ERR_peek_last_error();
    if (e) {
        ERR_error_string_n(e, ossl, sizeof ossl);
        ERR_clear_error();
    }
    int n = snprintf(err, errlen, fmt, a ? a : "", b ? b : "");
    if (ossl[0] && n > 0 && (size_t)n < errlen)
        snprintf(err + n, errlen - (size_t)n, " (%s)", ossl);
}

static int list_add(strlist_t *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return SKIFF_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strdup(s);
    if (!l->v[l->n])
        return SKIFF_ENOMEM;
    l->n++;
    return 0;
}

static void list_free(strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_same_set(strlist_t *a, strlist_t *b)
{
    if (a->n != b->n)
        return 0;
    qsort(a->v, a->n, sizeof(char *), cmp_str);
    qsort(b->v, b->n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]))
            return 0;
    return 1;
}

static int valid_dns_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || (c == '*' && p == s)))
            return 0;
    }
    return 1;
}

/* "IP:<canonical text>" of a 4- or 16-byte address. */
static int ip_entry(const unsigned char *bytes, int len, char *out, size_t cap)
{
    char txt[INET6_ADDRSTRLEN];
    if (!inet_ntop(len == 4 ? AF_INET : AF_INET6, bytes, txt, sizeof txt))
        return -1;
    snprintf(out, cap, "IP:%s", txt);
    return 0;
}

static int add_ip_text(strlist_t *l, const char *ip)
{
    unsigned char a[16];
    char e[64];
    int len;
    if (inet_pton(AF_INET, ip, a) == 1)
        len = 4;
    else if (inet_pton(AF_INET6, ip, a) == 1)
        len = 16;
    else
        return SKIFF_EINVAL;
    if (ip_entry(a, len, e, sizeof e) < 0)
        return SKIFF_EINVAL;
    return list_add(l, e);
}

/* The names the serving certificate must carry, as "DNS:x" / "IP:y". */
static int wanted_sans(const pki_opts_t *o, strlist_t *l, char *err, size_t errlen)
{
    int e = list_add(l, "DNS:localhost");
    if (!e)
        e = add_ip_text(l, "127.0.0.1");
    if (!e)
        e = add_ip_text(l, "::1");
    if (e)
        return e;
    char buf[300];
    if (!o || !o->no_host_names) {
        char host[256];
        if (gethostname(host, sizeof host) == 0) {
            host[sizeof host - 1] = '\0';
            if (valid_dns_name(host)) {
                snprintf(buf, sizeof buf, "DNS:%s", host);
                if ((e = list_add(l, buf)))
                    return e;
            }
        }
        struct ifaddrs *ifa = NULL;
        if (getifaddrs(&ifa) == 0) {
            for (struct ifaddrs *i = ifa; i && !e; i = i->ifa_next) {
                if (!i->ifa_addr || !(i->ifa_flags & IFF_UP))
                    continue;
                if (i->ifa_addr->sa_family == AF_INET) {
                    struct sockaddr_in *sa = (struct sockaddr_in *)i->ifa_addr;
                    if (ip_entry((unsigned char *)&sa->sin_addr, 4, buf, sizeof buf) == 0)
                        e = list_add(l, buf);
                } else if (i->ifa_addr->sa_family == AF_INET6) {
                    struct sockaddr_in6 *sa = (struct sockaddr_in6 *)i->ifa_addr;
                    /* link-local addresses need a zone and never name a server */
                    if (IN6_IS_ADDR_LINKLOCAL(&sa->sin6_addr))
                        continue;
                    if (ip_entry((unsigned char *)&sa->sin6_addr, 16, buf, sizeof buf) == 0)
                        e = list_add(l, buf);
                }
            }
            freeifaddrs(ifa);
            if (e)
                return e;
        }
    }
    for (const char *const *n = o ? o->extra_names : NULL; n && *n; n++) {
        if (!valid_dns_name(*n)) {
            fail_msg(err, errlen, "invalid DNS name for the serving certificate: %s%s", *n, NULL);
            return SKIFF_EINVAL;
        }
        snprintf(buf, sizeof buf, "DNS:%s", *n);
        if ((e = list_add(l, buf)))
            return e;
    }
    for (const char *const *n = o ? o->extra_ips : NULL; n && *n; n++) {
        e = add_ip_text(l, *n);
        if (e == SKIFF_EINVAL)
            fail_msg(err, errlen, "invalid IP address for the serving certificate: %s%s", *n,
                     NULL);
        if (e)
            return e;
    }
    return 0;
}

/* The SANs a certificate carries, in the same form as wanted_sans. */
static int cert_sans(X509 *x, strlist_t *l)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int e = 0;
    char buf[300];
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !e; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS) {
            const ASN1_IA5STRING *s = g->d.dNSName;
            snprintf(buf, sizeof buf, "DNS:%.*s", ASN1_STRING_length(s),
                     (const char *)ASN1_STRING_get0_data(s));
            e = list_add(l, buf);
        } else if (g->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *s = g->d.iPAddress;
            int len = ASN1_STRING_length(s);
            if ((len == 4 || len == 16) &&
                ip_entry(ASN1_STRING_get0_data(s), len, buf, sizeof buf) == 0)
                e = list_add(l, buf);
        }
    }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return e;
}

/* ---- files ------------------------------------------------------------------- */

static char *read_text(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = malloc(PKI_MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, PKI_MAX_FILE, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n == PKI_MAX_FILE) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    char *fit = realloc(buf, n + 1);
    return fit ? fit : buf;
}

/* Created 0600 under a temporary name (never readable by others, even
 * with a lax umask), synced, then renamed over the old file. */
static int write_text(const char *dir, const char *name, const char *text, char *err,
                      size_t errlen)
{
    char path[1200], tmp[1210];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        goto fail;
    if (fchmod(fd, 0600) != 0)
        goto fail_fd;
    size_t len = strlen(text), at = 0;
    while (at < len) {
        ssize_t w = write(fd, text + at, len - at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail_fd;
        at += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto fail_fd;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    if (rename(tmp, path) != 0)
        goto fail;
    return 0;
fail_fd:
    close(fd);
fail:
    fail_msg(err, errlen, "cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
    return SKIFF_EIO;
}

static int ensure_dir(const char *dir, char *err, size_t errlen)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp)
        return SKIFF_EINVAL;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            goto fail;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        goto fail;
    /* the directory holds keys: nobody else may even list it */
    if (chmod(tmp, 0700) != 0)
        goto fail;
    return 0;
fail:
    fail_msg(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
    return SKIFF_EIO;
}

/* ---- PEM conversions ------------------------------------------------------- */

static char *bio_text(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n <= 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s) {
        memcpy(s, data, (size_t)n);
        s[n] = '\0';
    }
    return s;
}

static char *cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (b && PEM_write_bio_X509(b, x) == 1)
        s = bio_text(b);
    BIO_free(b);
    return s;
}

static char *key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1)
        s = bio_text(b);
    BIO_free(b);
    return s;
}

static X509 *parse_cert(const char *pem)
{
    if (!pem)
        return NULL;
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    return x;
}

static EVP_PKEY *parse_key(const char *pem)
{
    if (!pem)
        return NULL;
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    return k;
}

/* ---- making certificates --------------------------------------------------- */

enum { KIND_CA, KIND_SERVER, KIND_CLIENT };

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int add_sans(X509 *x, const strlist_t *sans)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return -1;
    int rc = -1;
    for (size_t i = 0; i < sans->n; i++) {
        const char *s = sans->v[i];
        GENERAL_NAME *g = NULL;
        if (!strncmp(s, "DNS:", 4)) {
            ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
            if (!ia5 || ASN1_STRING_set(ia5, s + 4, -1) != 1) {
                ASN1_IA5STRING_free(ia5);
                goto out;
            }
            g = GENERAL_NAME_new();
            if (!g) {
                ASN1_IA5STRING_free(ia5);
                goto out;
            }
            GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
        } else {
            ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s + 3);
            if (!ip)
                goto out;
            g = GENERAL_NAME_new();
            if (!g) {
                ASN1_OCTET_STRING_free(ip);
                goto out;
            }
            GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
        }
        if (!sk_GENERAL_NAME_push(gens, g)) {
            GENERAL_NAME_free(g);
            goto out;
        }
    }
    rc = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1 ? 0 : -1;
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

/* A new certificate for key, signed by issuer/issuer_key (self-signed when
 * issuer is NULL). */
static X509 *make_cert(int kind, EVP_PKEY *key, const char *cn, const char *const *orgs,
                       const strlist_t *sans, X509 *issuer, EVP_PKEY *issuer_key, int days)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    if (!x || !serial)
        goto fail;
    if (X509_set_version(x, X509_VERSION_3) != 1)
        goto fail;
    /* random positive serial below 2^159, as RFC 5280 allows at most 20 bytes */
    if (BN_rand(serial, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)))
        goto fail;
    /* an hour back: a peer whose clock is a little behind accepts it at once */
    if (!X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL))
        goto fail;
    X509_NAME *name = X509_get_subject_name(x);
    for (const char *const *o = orgs; o && *o; o++)
        if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)*o, -1,
                                       -1, 0) != 1)
            goto fail;
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                   -1, 0) != 1)
        goto fail;
    if (X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
        X509_set_pubkey(x, key) != 1)
        goto fail;
    X509 *iss = issuer ? issuer : x;
    if (add_ext(x, iss, NID_subject_key_identifier, "hash") < 0)
        goto fail;
    if (kind == KIND_CA) {
        if (add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
            add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") < 0)
            goto fail;
    } else {
        if (add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
            add_ext(x, iss, NID_key_usage, "critical,digitalSignature") < 0 ||
            add_ext(x, iss, NID_ext_key_usage,
                    kind == KIND_SERVER ? "serverAuth" : "clientAuth") < 0 ||
            add_ext(x, iss, NID_authority_key_identifier, "keyid:always") < 0)
            goto fail;
        if (sans && add_sans(x, sans) < 0)
            goto fail;
    }
    if (X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) <= 0)
        goto fail;
    BN_free(serial);
    return x;
fail:
    BN_free(serial);
    X509_free(x);
    return NULL;
}

static EVP_PKEY *new_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* Still valid for at least PKI_RENEW_DAYS. */
static int fresh(X509 *x)
{
    time_t limit = time(NULL) + (time_t)PKI_RENEW_DAYS * 86400;
    return X509_cmp_time(X509_get0_notAfter(x), &limit) > 0 &&
           X509_cmp_current_time(X509_get0_notBefore(x)) < 0;
}

static int name_has(X509 *x, int nid, const char *want)
{
    X509_NAME *name = X509_get_subject_name(x);
    for (int i = -1; (i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0;) {
        const ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        if ((size_t)ASN1_STRING_length(d) == strlen(want) &&
            !memcmp(ASN1_STRING_get0_data(d), want, strlen(want)))
            return 1;
    }
    return 0;
}

/* A leaf read back from disk: parses, matches its key, was signed by our
 * CA and is not about to expire. */
static X509 *load_leaf(const pki_t *p, const char *cpem, const char *kpem)
{
    X509 *x = parse_cert(cpem);
    EVP_PKEY *k = parse_key(kpem);
    int ok = x && k && X509_check_private_key(x, k) == 1 &&
             X509_verify(x, X509_get0_pubkey(p->ca)) == 1 &&
             X509_check_issued(p->ca, x) == X509_V_OK && fresh(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int issue(const pki_t *p, int kind, const char *cn, const char *const *orgs,
                 const strlist_t *sans, int days, char **cpem, char **kpem)
{
    *cpem = *kpem = NULL;
    EVP_PKEY *k = new_key();
    X509 *x = k ? make_cert(kind, k, cn, orgs, sans, p->ca, p->ca_key, days) : NULL;
    if (x) {
        *cpem = cert_pem(x);
        *kpem = key_pem(k);
    }
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    if (!*cpem || !*kpem) {
        free(*cpem);
        free(*kpem);
        *cpem = *kpem = NULL;
        return SKIFF_ENOMEM;
    }
    return 0;
}

/* ---- the three parts --------------------------------------------------------- */

static int ensure_ca(pki_t *p, const char *dir, char *err, size_t errlen)
{
    char *cpem = read_text(dir, PKI_CA_CERT);
    char *kpem = read_text(dir, PKI_CA_KEY);
    X509 *x = parse_cert(cpem);
    EVP_PKEY *k = parse_key(kpem);
    if (x && k && X509_check_private_key(x, k) == 1 && X509_check_ca(x) >= 1 && fresh(x)) {
        p->ca = x;
        p->ca_key = k;
        p->ca_pem = cpem;
        free(kpem);
        ERR_clear_error();
        return 0;
    }
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
    free(cpem);
    free(kpem);
    k = new_key();
    x = k ? make_cert(KIND_CA, k, PKI_CA_CN, NULL, NULL, NULL, NULL, PKI_CA_DAYS) : NULL;
    cpem = x ? cert_pem(x) : NULL;
    kpem = x ? key_pem(k) : NULL;
    int e = 0;
    if (!cpem || !kpem) {
        fail_msg(err, errlen, "cannot create the cluster CA%s%s", NULL, NULL);
        e = SKIFF_ENOMEM;
    }
    if (!e)
        e = write_text(dir, PKI_CA_KEY, kpem, err, errlen);
    if (!e)
        e = write_text(dir, PKI_CA_CERT, cpem, err, errlen);
    free(kpem);
    if (e) {
        X509_free(x);
        EVP_PKEY_free(k);
        free(cpem);
        return e;
    }
    p->ca = x;
    p->ca_key = k;
    p->ca_pem = cpem;
    p->written |= PKI_WROTE_CA;
    return 0;
}

static int ensure_server(pki_t *p, const char *dir, const pki_opts_t *o, char *err,
                         size_t errlen)
{
    strlist_t want = {0}, have = {0};
    int e = wanted_sans(o, &want, err, errlen);
    if (e)
        goto out;
    char *cpem = NULL, *kpem = NULL;
    if (!(p->written & PKI_WROTE_CA)) {
        cpem = read_text(dir, PKI_SERVER_CERT);
        kpem = read_text(dir, PKI_SERVER_KEY);
        X509 *x = load_leaf(p, cpem, kpem);
        int ok = x && cert_sans(x, &have) == 0 && list_same_set(&want, &have);
        X509_free(x);
        if (ok) {
            p->server_cert_pem = cpem;
            p->server_key_pem = kpem;
            goto out;
        }
        free(cpem);
        free(kpem);
    }
    e = issue(p, KIND_SERVER, PKI_SERVER_CN, NULL, &want, PKI_LEAF_DAYS, &cpem, &kpem);
    if (e) {
        fail_msg(err, errlen, "cannot create the serving certificate%s%s", NULL, NULL);
        goto out;
    }
    e = write_text(dir, PKI_SERVER_KEY, kpem, err, errlen);
    if (!e)
        e = write_text(dir, PKI_SERVER_CERT, cpem, err, errlen);
    if (e) {
        free(cpem);
        free(kpem);
        goto out;
    }
    p->server_cert_pem = cpem;
    p->server_key_pem = kpem;
    p->written |= PKI_WROTE_SERVER;
out:
    list_free(&want);
    list_free(&have);
    return e;
}

static int ensure_admin(pki_t *p, const char *dir, char *err, size_t errlen)
{
    char *cpem = NULL, *kpem = NULL;
    if (!(p->written & PKI_WROTE_CA)) {
        cpem = read_text(dir, PKI_ADMIN_CERT);
        kpem = read_text(dir, PKI_ADMIN_KEY);
        X509 *x = load_leaf(p, cpem, kpem);
        int ok = x && name_has(x, NID_commonName, PKI_ADMIN_USER) &&
                 name_has(x, NID_organizationName, PKI_ADMIN_GROUP);
        X509_free(x);
        if (ok) {
            p->admin_cert_pem = cpem;
            p->admin_key_pem = kpem;
            return 0;
        }
        free(cpem);
        free(kpem);
    }
    static const char *const groups[] = {PKI_ADMIN_GROUP, NULL};
    int e = pki_issue_client(p, PKI_ADMIN_USER, groups, PKI_LEAF_DAYS, &cpem, &kpem);
    if (e) {
        fail_msg(err, errlen, "cannot create the admin certificate%s%s", NULL, NULL);
        return e;
    }
    e = write_text(dir, PKI_ADMIN_KEY, kpem, err, errlen);
    if (!e)
        e = write_text(dir, PKI_ADMIN_CERT, cpem, err, errlen);
    if (e) {
        free(cpem);
        free(kpem);
        return e;
    }
    p->admin_cert_pem = cpem;
    p->admin_key_pem = kpem;
    p->written |= PKI_WROTE_ADMIN;
    return 0;
}

/* ---- public ----------------------------------------------------------------- */

int pki_ensure(const char *dir, const pki_opts_t *o, pki_t **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!dir || !*dir || !out)
        return SKIFF_EINVAL;
    *out = NULL;
    int e = ensure_dir(dir, err, errlen);
    if (e)
        return e;
    pki_t *p = calloc(1, sizeof(*p));
    if (!p)
        return SKIFF_ENOMEM;
    e = ensure_ca(p, dir, err, errlen);
    if (!e)
        e = o && o->ca_only ? 0 : ensure_server(p, dir, o, err, errlen);
    if (!e)
        e = o && o->ca_only ? 0 : ensure_admin(p, dir, err, errlen);
    if (e) {
        pki_free(p);
        return e;
    }
    *out = p;
    return 0;
}

void pki_free(pki_t *p)
{
    if (!p)
        return;
    X509_free(p->ca);
    EVP_PKEY_free(p->ca_key);
    free(p->ca_pem);
    free(p->server_cert_pem);
    free(p->server_key_pem);
    free(p->admin_cert_pem);
    free(p->admin_key_pem);
    free(p);
}

const char *pki_ca_pem(const pki_t *p)
{
    return p ? p->ca_pem : NULL;
}

const char *pki_server_cert_pem(const pki_t *p)
{
    return p ? p->server_cert_pem : NULL;
}

const char *pki_server_key_pem(const pki_t *p)
{
    return p ? p->server_key_pem : NULL;
}

const char *pki_admin_cert_pem(const pki_t *p)
{
    return p ? p->admin_cert_pem : NULL;
}

const char *pki_admin_key_pem(const pki_t *p)
{
    return p ? p->admin_key_pem : NULL;
}

int pki_written(const pki_t *p)
{
    return p ? p->written : 0;
}

int pki_issue_client(const pki_t *p, const char *user, const char *const *groups, int days,
                     char **cert_pem, char **key_pem)
{
    if (!p || !user || !*user || days <= 0 || !cert_pem || !key_pem)
        return SKIFF_EINVAL;
    return issue(p, KIND_CLIENT, user, groups, NULL, days, cert_pem, key_pem);
}

SSL_CTX *pki_server_ctx_new(const pki_t *p, char *err, size_t errlen)
{
    if (!p)
        return NULL;
    SSL_CTX *ctx = tls_server_ctx_new(p->server_cert_pem, p->server_key_pem, p->ca_pem, err,
                                      errlen);
    if (ctx && SSL_CTX_add1_chain_cert(ctx, p->ca) != 1) {
        snprintf(err, errlen, "cannot add the CA to the served certificate chain");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

struct x509_st *pki_ca_cert(const pki_t *p)
{
    return p ? p->ca : NULL;
}

struct evp_pkey_st *pki_ca_key(const pki_t *p)
{
    return p ? p->ca_key : NULL;
}

char *pki_base64_new(const char *text)
{
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)text, (int)n);
    return out;
}
