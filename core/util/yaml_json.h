/* core/util/yaml_json.h - a configuration file (YAML, or JSON when it opens
 * with '{') read into a jansson tree, with bounded depth and node count and
 * messages that name the line. Used by the audit policy and the encryption
 * configuration loaders. */
#ifndef SKIFF_YAML_JSON_H
#define SKIFF_YAML_JSON_H

#include <stddef.h>

#include <jansson.h>

/* Plain true/false (True/False) and decimal integers keep their JSON type;
 * without it every scalar but null is a string. */
#define YAML_JSON_TYPED_SCALARS 0x1
/* A key given twice in one mapping is an error. */
#define YAML_JSON_REJECT_DUPLICATES 0x2

#define YAML_JSON_MAX_DEPTH 64
#define YAML_JSON_MAX_NODES 100000

/* New tree for the len bytes of text, or NULL with a message in err
 * ("line 3 column 5: ..."). */
json_t *yaml_json_load(const char *text, size_t len, int flags, char *err, size_t errlen);

#endif
