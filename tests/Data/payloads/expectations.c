/* hello_world with an expectation: the first bytes of xen_extra_version (Xen's xen_expectations test). */
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
    .old_size = 8,
    .expect = {
        .enabled = 1,
        .len = EXPECT_LEN,
        .data = { EXPECT_BYTES },
    },
};
