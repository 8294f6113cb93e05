/* core/profile/ranges.c - checks the cluster's address ranges
 * (--service-cluster-ip-range, --cluster-cidr) the way kube-apiserver and
 * kube-controller-manager do: one CIDR, or two of different families for
 * dual stack. Nothing allocates from them yet; they are recorded, shown
 * and handed to addons. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile.h"

static int parse_cidr(const char *s, int *family, char *err, size_t errlen,
                      const char *option)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    if (!slash || (size_t)(slash - s) >= sizeof addr) {
        snprintf(err, errlen, "--%s: \"%s\" is not a CIDR (address/prefix, e.g. 10.43.0.0/16)",
                 option, s);
        return -1;
    }
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = '\0';
    unsigned char buf[16];
    int max;
    if (inet_pton(AF_INET, addr, buf) == 1) {
        *family = 4;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, buf) == 1) {
        *family = 6;
        max = 128;
    } else {
        snprintf(err, errlen, "--%s: \"%s\" is not an IPv4 or IPv6 address", option, addr);
        return -1;
    }
    char *end;
    long bits = strtol(slash + 1, &end, 10);
    if (!slash[1] || *end || bits < 1 || bits > max) {
        snprintf(err, errlen, "--%s: prefix length of \"%s\" must be 1 to %d", option, s, max);
        return -1;
    }
    /* no host bits set, as Kubernetes requires (10.43.0.1/16 is refused) */
    for (int i = (int)bits; i < max; i++)
        if (buf[i / 8] & (0x80 >> (i % 8))) {
            snprintf(err, errlen, "--%s: \"%s\" has host bits set past the /%ld prefix", option,
                     s, bits);
            return -1;
        }
    return 0;
}

int profile_check_ranges(const char *option, const char *value, char *err, size_t errlen)
{
    if (!value) return 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", value);
    int n = 0, fam[3] = {0};
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        if (n == 2) {
            snprintf(err, errlen, "--%s: at most two ranges (one IPv4, one IPv6)", option);
            return -1;
        }
        if (parse_cidr(t, &fam[n], err, errlen, option) != 0) return -1;
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "--%s: empty", option);
        return -1;
    }
    if (n == 2 && fam[0] == fam[1]) {
        snprintf(err, errlen, "--%s: two ranges must be of different families (dual stack: one "
                 "IPv4 and one IPv6)", option);
        return -1;
    }
    return 0;
}
