/* core/security/audit.h - the audit log: audit.k8s.io/v1 Event lines chosen by
 * an audit.k8s.io/v1 Policy, written without blocking the event loop.
 *
 * The API server builds an audit_attrs_t for each request once it knows who
 * asks and what for, calls audit_event_begin() (RequestReceived), optionally
 * audit_event_response_started() for watches and other long-running answers,
 * and audit_event_end() when the answer is complete (ResponseComplete).
 * Everything runs on the loop thread; the file is written through the libuv
 * thread pool from a bounded buffer, so a slow disk costs dropped events
 * (counted and logged), never a stalled loop.
 *
 * Secret payloads are never logged: for secrets, serviceaccounts/token
 * (TokenRequest) and tokenreviews the request and response objects are left
 * out whatever the level, and the event says so in its annotations. */
#ifndef SKIFF_SECURITY_AUDIT_H
#define SKIFF_SECURITY_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

/* Ordered as in Kubernetes: each level includes everything of the ones before. */
typedef enum audit_level {
    AUDIT_LEVEL_NONE = 0,
    AUDIT_LEVEL_METADATA = 1,
    AUDIT_LEVEL_REQUEST = 2,
    AUDIT_LEVEL_REQUEST_RESPONSE = 3,
} audit_level_t;

/* Stages as bits, so a set of omitted stages is one mask. */
enum {
    AUDIT_STAGE_REQUEST_RECEIVED = 1 << 0,
    AUDIT_STAGE_RESPONSE_STARTED = 1 << 1,
    AUDIT_STAGE_RESPONSE_COMPLETE = 1 << 2,
    AUDIT_STAGE_PANIC = 1 << 3,
};

/* What a policy rule looks at. Strings may be NULL (same as ""). */
typedef struct audit_attrs {
    const char *username;
    const char *const *groups;
    size_t n_groups;
    /* Kubernetes verb for resource requests (get, list, watch, create,
     * update, patch, delete, deletecollection); the lower-case HTTP method
     * for non-resource requests (get, post, ...), as the authorizer sees it. */
    const char *verb;
    int resource_request; /* 1: /api or /apis resource path; 0: nonResourceURL */
    const char *path;     /* request path without query (nonResourceURLs match it) */
    const char *api_group; /* "" for the core group */
    const char *api_version;
    const char *resource;    /* "pods" */
    const char *subresource; /* "status", "token", or NULL */
    const char *namespace_;  /* NULL or "" for cluster-scoped resources */
    const char *name;        /* NULL for list, create without name, ... */
} audit_attrs_t;

/* Everything about one request that the event records besides the attrs. */
typedef struct audit_request_info {
    const audit_attrs_t *attrs;
    const char *request_uri;        /* path and query as sent */
    const char *const *source_ips;  /* client address first, then proxies; may be empty */
    size_t n_source_ips;
    const char *user_agent;
    /* With --as/--as-group: the user impersonated. As in Kubernetes, attrs
     * describe the user that authenticated (the event's `user`, and whom the
     * policy rules match) and this one becomes `impersonatedUser`. */
    const char *impersonated_username; /* NULL when no impersonation */
    const char *const *impersonated_groups;
    size_t n_impersonated_groups;
} audit_request_info_t;

typedef struct audit_policy audit_policy_t;
typedef struct audit audit_t;
typedef struct audit_event audit_event_t;

/* --- policy ---------------------------------------------------------------- */

/* Parses a Policy document (YAML or JSON). 0, or SKIFF_EINVAL with a message
 * naming the field in err; SKIFF_ENOMEM. *out is freed by audit_policy_free. */
int audit_policy_parse(const char *text, size_t len, audit_policy_t **out, char *err,
                       size_t errlen);
/* Reads and parses a policy file; SKIFF_EIO when it cannot be read. */
int audit_policy_load(const char *path, audit_policy_t **out, char *err, size_t errlen);
/* The policy used without a file: every request at Metadata, RequestReceived
 * omitted (one line a request). */
int audit_policy_default_new(audit_policy_t **out);
void audit_policy_free(audit_policy_t *p);
/* First matching rule wins; no match is None. *omit_stages (may be NULL)
 * receives the rule's omitStages together with the policy's. */
audit_level_t audit_policy_evaluate(const audit_policy_t *p, const audit_attrs_t *attrs,
                                    unsigned *omit_stages);

/* "None", "Metadata", "Request", "RequestResponse". */
const char *audit_level_name(audit_level_t level);
/* 1 when the request or response body of such a request may hold a secret. */
int audit_is_sensitive(const audit_attrs_t *attrs);

/* --- log ----------------------------------------------------------------- */

/* Opens (creates, mode 0600, O_APPEND) the log at path; "-" writes to
 * standard output. policy_path NULL uses audit_policy_default_new(). The
 * open and the policy read are synchronous: call this at start-up.
 * 0, or a negative SKIFF_E* code with a message in err. */
int audit_open(uv_loop_t *loop, const char *path, const char *policy_path, audit_t **out,
               char *err, size_t errlen);
/* As audit_open with a policy already parsed; takes ownership of policy
 * (also on failure). */
int audit_open_with_policy(uv_loop_t *loop, const char *path, audit_policy_t *policy,
                           audit_t **out, char *err, size_t errlen);
/* Bytes of lines that may wait for the disk before new events are dropped
 * (default 8 MiB). */
void audit_set_buffer_limit(audit_t *a, size_t bytes);

audit_level_t audit_level_for(const audit_t *a, const audit_attrs_t *attrs);

/* Starts the event of one request and logs its RequestReceived stage (unless
 * omitted). Returns NULL when the policy says None (or memory ran out); every
 * other audit_event_* function accepts NULL and does nothing. info is copied. */
audit_event_t *audit_event_begin(audit_t *a, const audit_request_info_t *info);
/* The auditID (a UUID), to answer in the Audit-ID header; NULL for NULL. */
const char *audit_event_id(const audit_event_t *ev);
audit_level_t audit_event_level(const audit_event_t *ev);
/* Adds an annotation (authorization.k8s.io/decision ...); copied. */
void audit_event_annotate(audit_event_t *ev, const char *key, const char *value);
/* The decoded request object (copied), logged at Request and above unless
 * the request is sensitive. */
void audit_event_set_request_object(audit_event_t *ev, const json_t *obj);
/* Logs ResponseStarted: for watches and other long-running answers, when
 * the headers have gone out. */
void audit_event_response_started(audit_t *a, audit_event_t *ev, int code);
/* Logs ResponseComplete and frees ev. response_json (may be NULL) is the
 * answer body: a Status there fills responseStatus, and at RequestResponse
 * it is logged as responseObject unless the request is sensitive. */
void audit_event_end(audit_t *a, audit_event_t *ev, int code, const char *response_json,
                     size_t len);
/* Logs the Panic stage (the handler failed without answering) and frees ev. */
void audit_event_panic(audit_t *a, audit_event_t *ev, const char *message);

typedef struct audit_stats {
    uint64_t events;  /* lines accepted into the buffer */
    uint64_t written; /* lines the file took */
    uint64_t dropped; /* lines lost: buffer full or write error */
    size_t buffered;  /* bytes waiting */
} audit_stats_t;
void audit_get_stats(const audit_t *a, audit_stats_t *out);

/* Flushes what is buffered, closes the file and frees a; done (may be NULL)
 * runs on the loop once that is over. The loop must keep running. */
void audit_close(audit_t *a, void (*done)(void *data), void *data);

#endif
