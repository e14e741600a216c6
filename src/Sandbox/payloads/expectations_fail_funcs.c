/*
 * The function entry of expectations_fail.c, for the gcc/objcopy/ld recipe (tools/payload/build-payload.sh), which is
 * the oracle for 'xen-livepatch build': build writes this entry itself from expectations_fail.c alone.
 */
#include "livepatch.h"

const char *xen_extra_version(void);

static const char expectations_fail_patch_this_fnc[] __attribute__((section(".livepatch.strings"))) = "xen_extra_version";

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
