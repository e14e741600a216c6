/* Replaces xen_extra_version with a function returning "Hello World" (Xen's xen_hello_world test). */
#include "livepatch.h"

static const char hello_world_patch_this_fnc[] = "xen_extra_version";

const char *xen_extra_version(void)
{
    return "Hello World";
}

LIVEPATCH_FUNC(livepatch_xen_hello_world) = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .name = hello_world_patch_this_fnc,
    .new_addr = xen_extra_version,
    .old_addr = 0,
    .new_size = SZ_xen_extra_version,
    .old_size = 8,
};
