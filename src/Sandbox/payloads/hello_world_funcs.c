/*
 * The function entry of hello_world.c, for the gcc/objcopy/ld recipe (tools/payload/build-payload.sh), which is
 * the oracle for 'xen-livepatch build': build writes this entry itself from hello_world.c alone.
 */
#include "livepatch.h"

const char *xen_extra_version(void);

static const char hello_world_patch_this_fnc[] __attribute__((section(".livepatch.strings"))) = "xen_extra_version";

LIVEPATCH_FUNC(livepatch_xen_hello_world) = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .name = hello_world_patch_this_fnc,
    .new_addr = xen_extra_version,
    .old_addr = 0,
    .new_size = SZ_xen_extra_version,
    .old_size = OLD_SZ_xen_extra_version,
};
