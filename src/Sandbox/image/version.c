/*
 * Version information, as Xen's common/version.c and kernel.c give it: the functions Xen's livepatch tests
 * patch (do_xen_version calls xen_extra_version and xen_minor_version), a function shorter than a jump, and a
 * static local. Built with -fcf-protection=branch: like Xen with CET-IBT, functions start with ENDBR64 and
 * patches go after it.
 */
#include "xen.h"

static const char extra_version[] = "-sandbox";
static const char major_minor[] = "4.17";

noinline const char *xen_extra_version(void)
{
    return extra_version;
}

noinline int xen_major_version(void)
{
    return major_minor[0] - '0';
}

noinline int xen_minor_version(void)
{
    return 17;
}

/* A lone 'ret' and no ENDBR64: too short for any patch but a 1-byte NOP. */
__attribute__((__noinline__, __nocf_check__)) void xen_tiny(void)
{
}

long do_xen_version(long cmd, long arg, long unused)
{
    static unsigned long calls; /* a static local */
    (void)unused;
    calls++;
    switch ( cmd )
    {
    case XENVER_version:
        return ((long)xen_major_version() << 16) | xen_minor_version();
    case XENVER_extraversion:
    {
        char *out = (char *)arg;
        const char *s = xen_extra_version();
        size_t i = 0;
        for ( ; s[i] && i < XEN_EXTRAVERSION_LEN - 1; i++ )
            out[i] = s[i];
        out[i] = 0;
        return 0;
    }
    default:
        return -38; /* -ENOSYS */
    }
}
