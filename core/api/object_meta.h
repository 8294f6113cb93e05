/* core/api/object_meta.h - metadata rules shared by the write verbs. */
#ifndef SKIFF_API_OBJECT_META_H
#define SKIFF_API_OBJECT_META_H

#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "object/registry.h"

/* 36 characters + NUL. */
void api_new_uid(char *buf);
void api_rfc3339(time_t t, char *buf, size_t len);
void api_now_rfc3339(char *buf, size_t len);
/* metadata object of obj, created if missing (borrowed). */
json_t *api_meta(json_t *obj);
const char *api_meta_str(const json_t *obj, const char *field);
int api_kind_has_generation(const kind_def_t *k);
/* Whether k is the core (group "") kind named kind, e.g. "Pod". */
int api_kind_is_core(const kind_def_t *k, const char *kind);
int api_spec_changed(const json_t *a, const json_t *b);
/* What status a newly created object starts with. */
void api_reset_status_for_create(const kind_def_t *k, json_t *obj);

/* autoscaling/v1 Scale for an object with spec.replicas (new reference). */
json_t *api_scale_view(const json_t *obj);
/* The Scale of an object of kind k: custom resources read the paths
 * their CRD names. New reference. */
json_t *api_scale_view_of(const kind_def_t *k, const json_t *obj);

/* A shallow copy of obj with kind, apiVersion and metadata first: the form
 * the server stores, which api_splice_rv() relies on. */
json_t *api_canonical_order(json_t *obj);
/* api_canonical_order without metadata.resourceVersion (removed from obj's
 * own metadata, which the copy shares): what a store write encodes. */
json_t *api_store_form(json_t *obj);
/* Stored bytes in canonical order with metadata.resourceVersion inserted,
 * without decoding them; NULL when json is not in that form. Caller frees. */
char *api_splice_rv(const char *json, size_t len, int64_t rev, size_t *outlen);
/* Its two halves, for a caller that places the bytes itself: where the
 * member goes in json (0: not in that form), and the member (with its
 * trailing comma) written to out, returning its length. */
#define API_RV_MEMBER_MAX 48
size_t api_splice_rv_at(const char *json, size_t len);
size_t api_rv_member(int64_t rev, char out[API_RV_MEMBER_MAX]);
/* Writes json with the member of length n inserted at head into out (len
 * + n + 1 bytes, NUL-terminated). */
void api_splice_rv_place(char *out, const char *json, size_t len, size_t head, const char *member,
                         size_t n);

/* Remove the field a Kubernetes field path names ("spec.containers[0].foo",
 * "metadata.labels[app]"). 0, or -1 when there is no such field. */
int api_remove_path(json_t *obj, const char *path);

#endif
