/* core/object/protobuf.h - Kubernetes protobuf request bodies as JSON objects.
 *
 * kubectl's typed clients send `application/vnd.kubernetes.protobuf` bodies
 * (the 4-byte "k8s\0" magic, then a runtime.Unknown envelope holding the
 * TypeMeta and the object's bytes). This module turns such a body into the
 * JSON object Kubernetes' JSON encoding of the same value would be, so the
 * rest of the API server only ever sees JSON. Field numbers come from the
 * generated table core/object/kinds/protobuf.json (scripts/gen-protobuf-fields);
 * JSON types come from the schema set. It only decodes; it never encodes. */
#ifndef SKIFF_PROTOBUF_H
#define SKIFF_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define K8S_PROTOBUF_MEDIA_TYPE "application/vnd.kubernetes.protobuf"

/* Decode a whole request body (magic + runtime.Unknown). Returns a new
 * object with "kind" and "apiVersion" set, or NULL with a message in err
 * (always NUL-terminated when errlen > 0) suitable for a 400 Status.
 * The kind must be registered (registry_init must have run). */
json_t *k8s_protobuf_decode(const char *body, size_t len, char *err, size_t errlen);

/* Decode one message of the named schema type ("io.k8s.api.core.v1.Pod")
 * without envelope. Returns a new object or NULL with a message in err. */
json_t *k8s_protobuf_decode_type(const char *type_name, const void *msg, size_t len, char *err,
                                 size_t errlen);

/* Load the embedded field table. Idempotent and called by the decoders;
 * 0 or SKIFF_E*. k8s_protobuf_unload frees it (tests, shutdown). */
int k8s_protobuf_load(void);
void k8s_protobuf_unload(void);

/* ---- wire-format reader (bounds-checked; exposed for tests) ------------- */

enum {
    K8S_PB_VARINT = 0,
    K8S_PB_FIXED64 = 1,
    K8S_PB_BYTES = 2, /* length-delimited */
    K8S_PB_FIXED32 = 5,
};

typedef struct k8s_pb_reader {
    const uint8_t *p, *end;
} k8s_pb_reader_t;

typedef struct k8s_pb_field {
    uint32_t number;
    int wire;            /* K8S_PB_* */
    uint64_t value;      /* VARINT, FIXED64, FIXED32 */
    const uint8_t *data; /* BYTES: points into the reader's buffer */
    size_t len;
} k8s_pb_field_t;

void k8s_pb_reader_init(k8s_pb_reader_t *r, const void *buf, size_t len);

/* Next field: 1 when f was filled, 0 at the clean end of the buffer,
 * SKIFF_EINVAL on a truncated or malformed field (bad varint, length past
 * the end, field number 0, group or unknown wire types). */
int k8s_pb_next(k8s_pb_reader_t *r, k8s_pb_field_t *f);

/* One varint from [*p, end): 0 and *p advanced, or SKIFF_EINVAL. */
int k8s_pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *out);

#endif
