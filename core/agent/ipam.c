/* core/agent/ipam.c - pod ranges for hollow nodes and pod addresses in them. */
#include "agent/ipam.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNITS (1u << (32 - IPAM_POD_SPACE_BITS - 8))

int ipam_prefix_for(int max_pods)
{
    int prefix = 24;
    /* network, gateway and broadcast addresses are not handed out */
    while (prefix > 16 && (1u << (32 - prefix)) - 3 < (uint32_t)max_pods) prefix--;
    return prefix;
}

int ipam_parse_ip(const char *s, uint32_t *ip)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1) return -1;
    *ip = ntohl(a.s_addr);
    return 0;
}

int ipam_parse_cidr(const char *s, uint32_t *base, int *prefix)
{
    char buf[32];
    const char *slash = strchr(s, '/');
    if (!slash || (size_t)(slash - s) >= sizeof buf) return -1;
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = '\0';
    char *end;
    long p = strtol(slash + 1, &end, 10);
    if (*end || end == slash + 1 || p < 0 || p > 32) return -1;
    if (ipam_parse_ip(buf, base) != 0) return -1;
    *prefix = (int)p;
    return 0;
}

void ipam_format(uint32_t ip, char *buf, size_t len)
{
    snprintf(buf, len, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static int unit_used(const ipam_t *m, uint32_t u)
{
    return m->used[u / 8] & (1u << (u % 8));
}

int ipam_mark(ipam_t *m, const char *cidr)
{
    uint32_t base;
    int prefix;
    if (ipam_parse_cidr(cidr, &base, &prefix) != 0) return -1;
    if (prefix > 24) prefix = 24;
    uint64_t first = base, count = 1ull << (32 - prefix);
    for (uint64_t a = first & ~0xFFull; a < first + count; a += 256) {
        if (a < IPAM_POD_SPACE || a >= IPAM_POD_SPACE + ((uint64_t)UNITS << 8)) continue;
        uint32_t u = (uint32_t)((a - IPAM_POD_SPACE) >> 8);
        m->used[u / 8] |= (uint8_t)(1u << (u % 8));
    }
    return 0;
}

int ipam_take(ipam_t *m, int prefix, uint32_t *base)
{
    if (prefix > 24) prefix = 24;
    uint32_t units = 1u << (24 - prefix);
    for (uint32_t u = 0; u + units <= UNITS; u += units) {
        uint32_t i = 0;
        while (i < units && !unit_used(m, u + i)) i++;
        if (i < units) continue;
        for (i = 0; i < units; i++) m->used[(u + i) / 8] |= (uint8_t)(1u << ((u + i) % 8));
        *base = IPAM_POD_SPACE + (u << 8);
        return 0;
    }
    return -1;
}

uint32_t ipam_node_ip(uint32_t range_base)
{
    /* unit numbers fit in 14 bits; +1 keeps the space's own .0 out */
    return IPAM_NODE_SPACE + ((range_base - IPAM_POD_SPACE) >> 8) + 1;
}

int pod_range_init(pod_range_t *r, uint32_t base, int prefix)
{
    memset(r, 0, sizeof *r);
    if (prefix < 16 || prefix > 30) return -1;
    r->base = base;
    r->size = 1u << (32 - prefix);
    r->next = 2;
    r->used = calloc(r->size / 8, 1);
    return r->used ? 0 : -1;
}

void pod_range_free(pod_range_t *r)
{
    free(r->used);
    r->used = NULL;
}

static int usable(const pod_range_t *r, uint32_t off)
{
    return off >= 2 && off < r->size - 1;
}

int pod_range_take(pod_range_t *r, uint32_t *ip)
{
    if (!r->used) return -1;
    /* round-robin from the last one handed out, so a freed address is not
     * reused at once (as host-local IPAM does) */
    for (uint32_t n = 0; n < r->size; n++) {
        uint32_t off = (r->next + n) % r->size;
        if (!usable(r, off) || (r->used[off / 8] & (1u << (off % 8)))) continue;
        r->used[off / 8] |= (uint8_t)(1u << (off % 8));
        r->next = off + 1;
        r->taken++;
        *ip = r->base + off;
        return 0;
    }
    return -1;
}

int pod_range_claim(pod_range_t *r, uint32_t ip)
{
    if (!r->used || ip < r->base || ip - r->base >= r->size) return -1;
    uint32_t off = ip - r->base;
    if (!(r->used[off / 8] & (1u << (off % 8)))) r->taken++;
    r->used[off / 8] |= (uint8_t)(1u << (off % 8));
    return 0;
}

void pod_range_release(pod_range_t *r, uint32_t ip)
{
    if (!r->used || ip < r->base || ip - r->base >= r->size) return;
    uint32_t off = ip - r->base;
    if (r->used[off / 8] & (1u << (off % 8))) r->taken--;
    r->used[off / 8] &= (uint8_t)~(1u << (off % 8));
}
