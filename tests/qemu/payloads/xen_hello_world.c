/*
 * Hello-world livepatch payload for Debian's Xen 4.17 (4.17.7), built by tests/qemu/build-hello-payload.sh.
 *
 * It replaces the hypervisor's xen_extra_version() with xen_hello_world(), so that XENVER_extraversion
 * (dom0's /sys/hypervisor/version/extra) reads "Hello World" while the patch is applied. It follows
 * xen/test/livepatch/xen_hello_world{,_func}.c, without Xen's headers: the layout of struct livepatch_func
 * below is the one of public/sysctl.h at RELEASE-4.17.7 (payload version 2, 104 bytes).
 *
 * The build script passes NEW_SIZE (the size of xen_hello_world, measured with nm -S after a first
 * compilation) and OLD_SIZE (how many bytes of xen_extra_version the patch may overwrite: at least the
 * 5 bytes of a jmp rel32; the function is 12 bytes long in Debian's 4.17.7 image, see
 * shared/reference/xen-qemu/REPORT.md).
 */
#include <stdint.h>

#define LIVEPATCH_PAYLOAD_VERSION 2
#define LIVEPATCH_OPAQUE_SIZE 31

struct livepatch_expectation {
    uint8_t enabled : 1;
    uint8_t len : 5;            /* length of data up to LIVEPATCH_OPAQUE_SIZE */
    uint8_t rsv : 2;
    uint8_t data[LIVEPATCH_OPAQUE_SIZE];
};

struct livepatch_func {
    const char *name;           /* the function to patch, looked up in Xen's symbol table */
    void *new_addr;             /* the replacement */
    void *old_addr;             /* 0: Xen resolves name itself */
    uint32_t new_size;
    uint32_t old_size;
    uint8_t version;            /* LIVEPATCH_PAYLOAD_VERSION */
    uint8_t _pad[39];           /* Xen's opaque state: must be zero */
    struct livepatch_expectation expect;
};
_Static_assert(sizeof(struct livepatch_func) == 104, "struct livepatch_func must be 104 bytes (version 2)");

#ifndef NEW_SIZE
#define NEW_SIZE 0
#endif
#ifndef OLD_SIZE
#define OLD_SIZE 12
#endif

/* The replacement for xen_extra_version(). */
__attribute__((noinline, used))
const char *xen_hello_world(void)
{
    return "Hello World";
}

static const char patched_function[] = "xen_extra_version";

__attribute__((used, section(".livepatch.funcs")))
struct livepatch_func livepatch_xen_hello_world = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .name = patched_function,
    .new_addr = xen_hello_world,
    .old_addr = 0,
    .new_size = NEW_SIZE,
    .old_size = OLD_SIZE,
};
