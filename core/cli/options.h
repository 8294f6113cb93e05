/* core/cli/options.h - command-line options declared once in a table.
 *
 * Each subcommand declares its options as an array of option_t; the same
 * table parses argv, fills the settings struct, and prints --help, so a
 * flag can never be parsed without being documented. */
#ifndef SKIFF_OPTIONS_H
#define SKIFF_OPTIONS_H

#include <stddef.h>

typedef enum { OPT_STRING = 1, OPT_INT, OPT_FLAG, OPT_LIST } option_type_t;

/* Field of an OPT_LIST option: every value of a repeated flag, in order
 * (pointers into argv). */
#define OPTION_LIST_MAX 16
typedef struct option_list {
    const char *v[OPTION_LIST_MAX];
    int n;
} option_list_t;

typedef struct option {
    const char *name;          /* "data-dir" for --data-dir */
    option_type_t type;
    const char *metavar;       /* "DIR" */
    const char *default_text;  /* shown in --help; NULL: none */
    const char *help;
    size_t offset;             /* where in the settings struct: char*, int, int (flag) or
                                * option_list_t (list) */
} option_t;

/* Parse argv (after the subcommand) into settings. Returns 0, 1 when --help
 * was printed, or -1 after printing an error naming the bad option. A flag
 * --x may also be given as --no-x, which sets it to 0 (undoing a value set
 * beforehand, by a cluster profile for instance). */
int options_parse(const char *prog, const char *usage, const option_t *opts, size_t nopts,
                  int argc, char **argv, void *settings);
void options_print_help(const char *prog, const char *usage, const option_t *opts, size_t nopts);

#endif
