/* core/api/status.h - Kubernetes Status objects for every error the API returns.
 *
 * One place maps an HTTP code to its Kubernetes reason (NotFound,
 * AlreadyExists, Conflict, Invalid, ...) and builds the JSON body kubectl
 * prints ("Error from server (NotFound): deployments.apps \"x\" not found"). */
#ifndef SKIFF_API_STATUS_H
#define SKIFF_API_STATUS_H

#include <jansson.h>

#include "api/request.h"
#include "object/registry.h"

/* Reason string Kubernetes uses for an HTTP code ("NotFound" for 404). */
const char *status_reason_for_code(int code);

/* A new Status object: {"kind":"Status","apiVersion":"v1","status":"Failure",...}.
 * reason NULL picks the one for code. details may be NULL (stolen otherwise). */
json_t *status_new(int code, const char *reason, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Details block {name, group, kind, causes?}; kind is the resource ("deployments"). */
json_t *status_details(const kind_def_t *k, const char *name);

/* Send a Status as the whole response. */
void status_send(api_response_t *resp, json_t *status);
/* Shorthand: build and send. */
void status_reply(api_response_t *resp, int code, const char *reason, json_t *details,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "deployments.apps" or "pods": how Kubernetes names a resource in messages. */
const char *status_resource_name(const kind_def_t *k, char *buf, size_t len);

/* The 422 Invalid Status for validation errors:
 * `Deployment.apps "x" is invalid: spec.replicas: Invalid value: ...`. */
json_t *status_invalid(const kind_def_t *k, const char *name, const validation_result_t *res);
/* Sends that 422 with one cause: field, its reason ("FieldValueInvalid",
 * ...) and message ("Invalid value: ..."), which kubectl prints. */
void status_reply_invalid_field(api_response_t *resp, const kind_def_t *k, const char *name,
                                const char *field, const char *reason, const char *msg);

/* Send a JSON value as 200/201 with application/json. */
void reply_json(api_response_t *resp, int code, const json_t *obj);

#endif
