/* core/api/table.h - server-side printing: objects as a meta.k8s.io Table.
 *
 * `kubectl get` asks for Accept: application/json;as=Table;v=v1;g=meta.k8s.io
 * and prints the rows the server sends. Columns come from the kind's
 * registry entry (kind_column_t): NAME, the priority-0 columns, AGE, then
 * the priority-1 (-o wide) columns. A kind may place AGE itself by
 * declaring a column "AGE" with no compute and no json_path (or
 * ".metadata.creationTimestamp"); declaring a column "NAME" the same way
 * (json_path NULL or ".metadata.name") means the kind lays out every
 * column itself and no NAME or AGE is added (events). Kinds without
 * columns (CRDs without printer columns) get NAME and AGE. Columns of type
 * "date" are sent as ages, as for CRD printer columns. This file only converts
 * objects it is given; it never reads the store. */
#ifndef SKIFF_API_TABLE_H
#define SKIFF_API_TABLE_H

#include <time.h>

#include <jansson.h>

#include "object/registry.h"

#define TABLE_V1_TYPE "application/json;as=Table;v=v1;g=meta.k8s.io"
#define TABLE_V1BETA1_TYPE "application/json;as=Table;v=v1beta1;g=meta.k8s.io"

/* What each row's "object" holds (query parameter includeObject). */
typedef enum table_include {
    TABLE_INCLUDE_METADATA = 0, /* PartialObjectMetadata (the default) */
    TABLE_INCLUDE_NONE,         /* no object */
    TABLE_INCLUDE_OBJECT,       /* the whole object */
} table_include_t;

enum { TABLE_NONE = 0, TABLE_V1 = 1, TABLE_V1BETA1 = 2 };

typedef struct table_opts {
    table_include_t include;
    int version;    /* TABLE_V1 (default when 0) or TABLE_V1BETA1 */
    int no_headers; /* columnDefinitions left empty (watch events after the first) */
    time_t now;     /* reference time for AGE cells; 0: time(NULL) */
} table_opts_t;

/* Which Table version the Accept header asks for first: TABLE_V1,
 * TABLE_V1BETA1, or TABLE_NONE when it asks for no Table (plain JSON). If
 * content_type is not NULL it receives the matching response Content-Type. */
int table_accept(const char *accept, const char **content_type);

/* includeObject from a raw query string ("a=b&includeObject=Object");
 * TABLE_INCLUDE_METADATA when absent or unknown. */
table_include_t table_include_from_query(const char *query);

/* Build a Table from src, which is either a list (has "items": its
 * metadata.resourceVersion, continue and remainingItemCount are carried
 * over) or a single object. k may be NULL (unknown kind: NAME and AGE).
 * Objects in src are referenced, not copied: do not change src while the
 * table is alive. Returns a new reference, or NULL when out of memory or
 * src is not an object. */
json_t *table_new(const kind_def_t *k, const json_t *src, const table_opts_t *opts);

/* Human duration the way Kubernetes prints ages ("45s", "3m2s", "5h",
 * "12d", "2y3d"); seconds < -1 gives "<invalid>". buf gets at most size
 * bytes. Returns buf. */
char *table_human_duration(long long seconds, char *buf, size_t size);

/* Age of an RFC 3339 timestamp relative to now, written like
 * table_human_duration; "<unknown>" when ts is NULL or unparsable. */
char *table_age(const char *ts, time_t now, char *buf, size_t size);

#endif
