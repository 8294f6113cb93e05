/* core/api/event_ttl.h - Events expire a set time after their last write
 * (event_ttl.c), as kube-apiserver's --event-ttl has them expire. */
#ifndef SKIFF_EVENT_TTL_H
#define SKIFF_EVENT_TTL_H

#include <stdint.h>

#include <uv.h>

typedef struct api_server api_server_t;

/* Sets up the sweep (with ttl_ms <= 0 nothing ever expires). */
void api_event_ttl_init(api_server_t *s, int64_t ttl_ms);
/* Stops it; cb runs once its timer is closed. */
void api_event_ttl_close(api_server_t *s, uv_close_cb cb);

#endif
