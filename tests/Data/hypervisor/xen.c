/*
 * A miniature hypervisor image for the livepatch tests: the functions Xen's own livepatch tests patch
 * (xen_extra_version, xen_minor_version), a hypercall that calls them, a function shorter than a jump,
 * data, and a static local. Linked at Xen's x86 text address with a GNU build-id, like xen-syms.
 */
#pragma GCC visibility push(hidden)

typedef unsigned long size_t;

static const char extra_version[] = ".7";
int hv_counter;
static int calls;
char hv_buffer[64];

__attribute__((noinline)) const char *xen_extra_version(void)
{
    return extra_version;
}

__attribute__((noinline)) int xen_minor_version(void)
{
    return 17;
}

__attribute__((noinline)) int xen_major_version(void)
{
    return 4;
}

/* Shorter than the 5 bytes of a jump on x86 (a lone 'ret'), and than 4 bytes of a branch nowhere. */
__attribute__((noinline)) void xen_tiny(void)
{
}

__attribute__((noinline)) int hv_function(int x)
{
    static int seen; /* a static local: file#seen.N in the symbol table */
    seen += x;
    calls++;
    return seen + hv_counter;
}

long do_xen_version(int cmd, char *arg)
{
    switch (cmd) {
    case 0:
        return ((long)xen_major_version() << 16) | xen_minor_version();
    case 1: {
        const char *s = xen_extra_version();
        size_t i = 0;
        for (; s[i] && i < 15; i++)
            arg[i] = s[i];
        arg[i] = 0;
        return 0;
    }
    default:
        return -38;
    }
}

void _start(void)
{
    for (;;)
        hv_counter += (int)do_xen_version(0, hv_buffer);
}
