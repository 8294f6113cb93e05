/* core/cmd_user.c - `skiff user create`: a user of the cluster is a client
 * certificate signed by the cluster CA (CN = user, O = groups), handed out
 * as a kubeconfig. What the user may do is up to RBAC (kubectl create
 * rolebinding ... --user NAME). */
#include "cmd_user.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/options.h"
#include "kubeconfig.h"
#include "security/pki.h"

typedef struct user_settings {
    const char *data_dir;
    const char *groups;
    const char *server;
    const char *out;
    int days;
} user_settings_t;

static const option_t user_options[] = {
    {"data-dir", OPT_STRING, "DIR", "$HOME/.local/share/skiff",
     "the server's data directory (its CA is in DIR/pki)", offsetof(user_settings_t, data_dir)},
    {"group", OPT_STRING, "G1,G2", NULL, "groups the user belongs to (comma-separated)",
     offsetof(user_settings_t, groups)},
    {"server", OPT_STRING, "URL", "the server in DIR/kubeconfig",
     "the API server's URL (https://...)", offsetof(user_settings_t, server)},
    {"out", OPT_STRING, "FILE", "NAME.kubeconfig", "where to write the user's kubeconfig",
     offsetof(user_settings_t, out)},
    {"days", OPT_INT, "N", "365", "how long the certificate is valid",
     offsetof(user_settings_t, days)},
};

int cmd_user(int argc, char **argv)
{
    const char *usage = "Creates a user: a client certificate from the cluster CA, in a "
                        "kubeconfig.\n  skiff user create NAME [options]";
    if (argc < 1 || (strcmp(argv[0], "create") != 0)) {
        if (argc >= 1 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
            options_print_help("skiff user create NAME", usage, user_options,
                               sizeof user_options / sizeof *user_options);
            return 0;
        }
        fprintf(stderr, "skiff user: expected `create NAME` (see skiff user --help)\n");
        return 2;
    }
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
            options_print_help("skiff user create NAME", usage, user_options,
                               sizeof user_options / sizeof *user_options);
            return 0;
        }
        fprintf(stderr, "skiff user create: the user's NAME is missing\n");
        return 2;
    }
    const char *name = argv[1];
    user_settings_t set = {.days = 365};
    int rc = options_parse("skiff user create NAME", usage, user_options,
                           sizeof user_options / sizeof *user_options, argc - 2, argv + 2, &set);
    if (rc != 0) return rc > 0 ? 0 : 2;
    char dir[1024], pkidir[1100], out[1100], kc[1100];
    const char *home = getenv("HOME");
    if (set.data_dir) snprintf(dir, sizeof dir, "%s", set.data_dir);
    else snprintf(dir, sizeof dir, "%s/.local/share/skiff", home ? home : ".");
    snprintf(pkidir, sizeof pkidir, "%s/pki", dir);
    snprintf(kc, sizeof kc, "%s/kubeconfig", dir);
    if (set.out) snprintf(out, sizeof out, "%s", set.out);
    else snprintf(out, sizeof out, "%s.kubeconfig", name);

    char *server = set.server ? strdup(set.server) : kubeconfig_server(kc);
    if (!server || strncmp(server, "https://", 8) != 0) {
        fprintf(stderr,
                "skiff user create: no https server URL (is the server running with --tls? "
                "or pass --server https://HOST:PORT)\n");
        free(server);
        return 1;
    }
    /* groups: "a,b" -> {"a", "b", NULL} */
    char *gbuf = set.groups ? strdup(set.groups) : NULL;
    const char *groups[33];
    size_t ng = 0;
    for (char *g = gbuf ? strtok(gbuf, ",") : NULL; g && ng < 32; g = strtok(NULL, ","))
        if (*g) groups[ng++] = g;
    groups[ng] = NULL;

    char err[512];
    pki_t *pki = NULL;
    pki_opts_t po = {.ca_only = 1};
    char *cert = NULL, *key = NULL;
    int code = 1;
    char capath[1200];
    snprintf(capath, sizeof capath, "%s/" PKI_CA_CERT, pkidir);
    if (access(capath, R_OK) != 0) {
        fprintf(stderr, "skiff user create: %s has no cluster CA; start the server (HTTPS is "
                        "the default) once first\n", pkidir);
        goto out;
    }
    if (pki_ensure(pkidir, &po, &pki, err, sizeof err) != 0) {
        fprintf(stderr, "skiff user create: %s\n", err);
        goto out;
    }
    if (pki_written(pki) & PKI_WROTE_CA) {
        fprintf(stderr, "skiff user create: %s had no cluster CA; start the server with --tls "
                        "first\n", pkidir);
        goto out;
    }
    if (pki_issue_client(pki, name, ng ? groups : NULL, set.days, &cert, &key) != 0) {
        fprintf(stderr, "skiff user create: cannot issue a certificate for %s\n", name);
        goto out;
    }
    if (kubeconfig_write(out, server, name, pki_ca_pem(pki), cert, key) != 0) {
        fprintf(stderr, "skiff user create: cannot write %s: %s\n", out, strerror(errno));
        goto out;
    }
    printf("user %s%s%s: kubeconfig written to %s\n", name, ng ? " in groups " : "",
           set.groups && ng ? set.groups : "", out);
    code = 0;
out:
    free(cert);
    if (key) OPENSSL_cleanse(key, strlen(key));
    free(key);
    pki_free(pki);
    free(gbuf);
    free(server);
    return code;
}
