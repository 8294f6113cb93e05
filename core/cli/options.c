/* core/cli/options.c - parses and documents options from their table. */
#include "cli/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void options_print_help(const char *prog, const char *usage, const option_t *opts, size_t nopts)
{
    printf("Usage: %s\n\n%s\n\nOptions:\n", prog, usage);
    for (size_t i = 0; i < nopts; i++) {
        char left[64];
        if (opts[i].type == OPT_FLAG)
            snprintf(left, sizeof left, "--%s", opts[i].name);
        else
            snprintf(left, sizeof left, "--%s %s", opts[i].name, opts[i].metavar);
        printf("  %-28s %s", left, opts[i].help);
        if (opts[i].default_text) printf(" (default: %s)", opts[i].default_text);
        printf("\n");
    }
    printf("  %-28s %s\n", "-h, --help", "show this help");
}

static const option_t *find(const option_t *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) return &opts[i];
    return NULL;
}

int options_parse(const char *prog, const char *usage, const option_t *opts, size_t nopts,
                  int argc, char **argv, void *settings)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            options_print_help(prog, usage, opts, nopts);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "%s: unexpected argument \"%s\" (see --help)\n", prog, a);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const option_t *o = find(opts, nopts, name, len);
        /* --no-FLAG turns off a flag (one a cluster profile turned on) */
        int off = 0;
        if (!o && len > 3 && strncmp(name, "no-", 3) == 0) {
            o = find(opts, nopts, name + 3, len - 3);
            if (o && o->type != OPT_FLAG) o = NULL;
            off = o != NULL;
        }
        if (!o) {
            fprintf(stderr, "%s: unknown option \"--%.*s\" (see --help)\n", prog, (int)len, name);
            return -1;
        }
        char *field = (char *)settings + o->offset;
        if (o->type == OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "%s: --%s takes no value\n", prog, o->name);
                return -1;
            }
            *(int *)field = !off;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) {
            fprintf(stderr, "%s: --%s needs a value (%s)\n", prog, o->name, o->metavar);
            return -1;
        }
        if (o->type == OPT_STRING) {
            *(const char **)field = val;
        } else if (o->type == OPT_LIST) {
            option_list_t *l = (option_list_t *)(void *)field;
            if (l->n >= OPTION_LIST_MAX) {
                fprintf(stderr, "%s: --%s given more than %d times\n", prog, o->name,
                        OPTION_LIST_MAX);
                return -1;
            }
            l->v[l->n++] = val;
        } else {
            char *end;
            errno = 0;
            long v = strtol(val, &end, 10);
            if (errno || *end || v < 0 || v > 65535 * 1000L) {
                fprintf(stderr, "%s: --%s expects a number, got \"%s\"\n", prog, o->name, val);
                return -1;
            }
            *(int *)field = (int)v;
        }
    }
    return 0;
}
