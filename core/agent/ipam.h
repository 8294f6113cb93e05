/* core/agent/ipam.h - addresses for hollow nodes and their pods.
 *
 * Each node gets a pod range (spec.podCIDR) carved out of 10.64.0.0/10 in
 * /24 units (larger when --pods needs more than 253 addresses) and an
 * InternalIP in 10.16.0.0/12 derived from that range, so both are unique
 * among every node that has one from the same space, whichever agent made
 * it. Pods get addresses from their node's range (.2 up; .0, .1 and the
 * last are left out, as a bridge network would). Pure computation: no I/O. */
#ifndef SKIFF_AGENT_IPAM_H
#define SKIFF_AGENT_IPAM_H

#include <stddef.h>
#include <stdint.h>

#define IPAM_POD_SPACE 0x0A400000u  /* 10.64.0.0 */
#define IPAM_POD_SPACE_BITS 10      /* /10: 16384 units of /24 */
#define IPAM_NODE_SPACE 0x0A100000u /* 10.16.0.0 */

/* Which /24 units of the pod space are taken. */
typedef struct ipam {
    uint8_t used[(1u << (32 - IPAM_POD_SPACE_BITS - 8)) / 8];
} ipam_t;

/* The prefix length of a node's pod range holding max_pods addresses. */
int ipam_prefix_for(int max_pods);
/* Marks a CIDR ("10.64.3.0/24") already given to a node; ranges outside
 * the pod space are ignored. 0, or -1 when it does not parse. */
int ipam_mark(ipam_t *m, const char *cidr);
/* Takes a free range of that prefix length (aligned); 0 with its first
 * address in *base, or -1 when the space is full. */
int ipam_take(ipam_t *m, int prefix, uint32_t *base);
/* The node InternalIP that goes with a pod range. */
uint32_t ipam_node_ip(uint32_t range_base);

/* "a.b.c.d" and "a.b.c.d/n"; 0 or -1. */
int ipam_parse_ip(const char *s, uint32_t *ip);
int ipam_parse_cidr(const char *s, uint32_t *base, int *prefix);
void ipam_format(uint32_t ip, char *buf, size_t len);

/* The addresses of one node's pods. */
typedef struct pod_range {
    uint32_t base;
    uint32_t size; /* addresses in the range */
    uint32_t next; /* where the next search starts (offset) */
    uint32_t taken;
    uint8_t *used; /* size bits */
} pod_range_t;

int pod_range_init(pod_range_t *r, uint32_t base, int prefix);
void pod_range_free(pod_range_t *r);
/* A free address; 0, or -1 when every one is taken. */
int pod_range_take(pod_range_t *r, uint32_t *ip);
/* Marks an address already in use (a pod found running); 0, or -1 when it
 * is not in the range. */
int pod_range_claim(pod_range_t *r, uint32_t ip);
void pod_range_release(pod_range_t *r, uint32_t ip);

#endif
