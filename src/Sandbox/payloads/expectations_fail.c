/* xen_expectations_fail: expects bytes that are not there (de ad c0 de ba be): APPLY fails with -EINVAL. */
#include "livepatch.h"

static const char expectations_fail_patch_this_fnc[] = "xen_extra_version";

const char *xen_extra_version(void)
{
    return "Hello World";
}

LIVEPATCH_FUNC(livepatch_xen_expectations_fail) = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .name = expectations_fail_patch_this_fnc,
    .new_addr = xen_extra_version,
    .old_addr = 0,
    .new_size = SZ_xen_extra_version,
    .old_size = OLD_SZ_xen_extra_version,
    .expect = {
        .enabled = 1,
        .len = 6,
        .data = { 0xde, 0xad, 0xc0, 0xde, 0xba, 0xbe },
    },
};
