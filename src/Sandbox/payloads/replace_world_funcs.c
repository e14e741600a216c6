/*
 * The function entry of replace_world.c, for the gcc/objcopy/ld recipe (tools/payload/build-payload.sh), which is
 * the oracle for 'xen-livepatch build': build writes this entry itself from replace_world.c alone.
 */
#include "livepatch.h"

const char *xen_extra_version(void);

static const char xen_replace_world_name[] __attribute__((section(".livepatch.strings"))) = "xen_extra_version";

LIVEPATCH_FUNC(livepatch_xen_replace_world) = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .name = xen_replace_world_name,
    .new_addr = xen_extra_version,
    .old_addr = 0,
    .new_size = SZ_xen_extra_version,
    .old_size = OLD_SZ_xen_extra_version,
};
