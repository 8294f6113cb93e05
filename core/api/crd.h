/* core/api/crd.h - CustomResourceDefinitions in the API server: what a CRD
 * in the store makes the server serve, and the CRD's own status and
 * finalizer (core/api/crd.c). Not for use outside core/api. */
#ifndef SKIFF_API_CRD_H
#define SKIFF_API_CRD_H

#include <jansson.h>
#include <skiff/store.h>

#include "object/registry.h"

struct api_server;

/* Before the initial load fills the caches: serve the custom resources of
 * every CRD among kvs, so their objects find a cache. */
void crd_boot(struct api_server *s, const skiff_kv_t *kvs, size_t n);
/* The initial load is done and the store watched: bring every CRD's
 * status up to date and go on deleting terminating ones. */
void crd_boot_done(struct api_server *s);
/* After the caches took one store event: follow a CRD written or deleted
 * (its custom resources' cache exists before their next event). */
void crd_on_event(struct api_server *s, const skiff_store_event_t *ev);
/* After a batch of events: move terminating CRDs on as their objects go. */
void crd_after_events(struct api_server *s);
/* Stop serving every custom resource and free what the CRDs hold. */
void crd_server_free(struct api_server *s);

/* The autoscaling/v1 Scale of a custom resource, from the CRD's
 * specReplicasPath, statusReplicasPath and labelSelectorPath. New reference. */
json_t *crd_scale_view(const kind_def_t *k, const json_t *obj);
/* Write replicas at the specReplicasPath of obj. 0 or -1. */
int crd_scale_set(const kind_def_t *k, json_t *obj, json_int_t replicas);

/* The OpenAPI schema of a custom resource's kind, refs under ref_prefix
 * ("#/definitions/" or "#/components/schemas/"). New reference. */
json_t *crd_openapi_definition(const kind_def_t *k, const char *ref_prefix, int v3);

/* An update of a CustomResourceDefinition: what may not change (scope).
 * 0 (also for other kinds), or -1 after answering 422. */
struct api_call;
int crd_admit_update(struct api_call *c, const json_t *obj, const json_t *old);

/* A request to a deprecated version: the Warning header Kubernetes sends. */
void crd_request_warning(struct api_call *c);

/* 1 when k's CRD is being deleted (new objects are refused). */
int crd_terminating(const kind_def_t *k);

#endif
