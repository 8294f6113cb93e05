/* core/profile/profile.h - cluster profiles: a JSON or Lua file that chooses
 * the plugins and the settings `skiff server` runs with.
 *
 * A profile is one JSON object (a Lua profile returns a table of the same
 * shape). Its `server` section sets any option of `skiff server --help` by
 * name; the structured sections (store, controllers, scheduler, admission,
 * plugins, network, addons) are translated into those same options, so the
 * options table in cmd_server.c stays the one list of settings and an
 * option added later needs no profile code. Precedence: built-in defaults <
 * profile < command line.
 *
 * Every error names the file, the line where the setting is (found in the
 * file's text; 0 when it cannot be found) and the setting's path. This
 * file must not start anything: it reads, checks and fills settings. */
#ifndef SKIFF_PROFILE_H
#define SKIFF_PROFILE_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "cli/options.h"

typedef struct profile profile_t;

/* The profile `skiff server` runs without --profile. */
#define PROFILE_DEFAULT "single-node"

/* spec is a built-in profile's name ("edge") or a file (*.json or *.lua,
 * or anything containing '/'). NULL with a message in err. */
profile_t *profile_load(const char *spec, char *err, size_t errlen);
/* The same from text (origin names it in messages; lua: a Lua chunk). */
profile_t *profile_load_text(const char *origin, const char *text, size_t len, int lua,
                             char *err, size_t errlen);
void profile_free(profile_t *p);

/* Fills settings from the profile through the options table: 0, or -1 with
 * "FILE:LINE: SETTING: what is wrong" in err. String values stay owned by
 * the profile (free it after the settings). */
int profile_apply(profile_t *p, const option_t *opts, size_t nopts, void *settings, char *err,
                  size_t errlen);
/* After the command line was parsed over the profile's settings: settings
 * that accumulate (plugin-settings) keep the profile's entries before the
 * command line's, so the command line wins per setting. */
int profile_merge_cli(profile_t *p, const option_t *opts, size_t nopts, void *settings);

/* The whole command line of a subcommand with profiles: argv is parsed
 * once to find the option "profile" (default PROFILE_DEFAULT), the profile
 * fills settings, argv is parsed again over it, and accumulating settings
 * are merged. Returns 0, 1 after --help, or -1 after printing the error
 * to stderr. *out is the profile (free it after the settings). */
int profile_parse_args(const char *prog, const char *usage, const option_t *opts, size_t nopts,
                       int argc, char **argv, void *settings, size_t settings_size,
                       profile_t **out);

/* Address ranges (--service-cluster-ip-range, --cluster-cidr): one or two
 * CIDRs, comma-separated, at most one per family. 0 or -1 with err. */
int profile_check_ranges(const char *option, const char *value, char *err, size_t errlen);

/* Variables for addon files: PROFILE and every option as NAME_IN_CAPS. */
json_t *profile_addon_vars(const profile_t *p, const option_t *opts, size_t nopts,
                           const void *settings);

const char *profile_name(const profile_t *p);
const char *profile_origin(const profile_t *p); /* "built-in" or the file */
/* Addon paths (absolute, or "builtin:NAME" for files shipped in the
 * binary); borrowed array of strings. */
json_t *profile_addons(const profile_t *p);

/* The resolved configuration (profile name and origin, every option's
 * effective value, addons) as JSON; new reference. */
json_t *profile_resolved(const profile_t *p, const option_t *opts, size_t nopts,
                         const void *settings);

/* Built-in files (profiles and their addons) shipped in the binary. */
typedef struct profile_builtin_file {
    const char *name; /* "single-node.json", "addons/cluster-info.yaml" */
    const char *text;
} profile_builtin_file_t;
extern const profile_builtin_file_t profile_builtin_files[]; /* NULL-terminated */
const char *profile_builtin_text(const char *name);

/* Lua profiles (profile_lua.c): evaluates the chunk in a sandbox (no io,
 * no os but getenv/time/clock/date, no loading of files or code, bounded
 * memory and instructions) and converts the table it returns to JSON. */
json_t *profile_lua_eval(const char *origin, const char *text, size_t len, char *err,
                         size_t errlen);

#endif
