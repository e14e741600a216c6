/* xen_expectations: the hello-world patch, expecting the first 8 bytes of xen_extra_version as they are. */
#include "livepatch.h"

static const char expectations_patch_this_fnc[] = "xen_extra_version";

const char *xen_extra_version(void)
{
    return "Hello World";
}

LIVEPATCH_FUNC(livepatch_xen_expectations) = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .name = expectations_patch_this_fnc,
    .new_addr = xen_extra_version,
    .old_addr = 0,
    .new_size = SZ_xen_extra_version,
    .old_size = OLD_SZ_xen_extra_version,
    .expect = {
        .enabled = 1,
        .len = 8,
        .data = { BYTES8_xen_extra_version },
    },
};
