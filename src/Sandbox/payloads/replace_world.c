/* xen_replace_world: for REPLACE; old_addr 0, so the core resolves the name. The extraversion buffer is
 * 16 bytes, so readers see "Hello Again Wor". */
#include "livepatch.h"

static const char xen_replace_world_name[] = "xen_extra_version";

const char *xen_extra_version(void)
{
    return "Hello Again World!";
}

LIVEPATCH_FUNC(livepatch_xen_replace_world) = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .name = xen_replace_world_name,
    .new_addr = xen_extra_version,
    .old_addr = 0,
    .new_size = SZ_xen_extra_version,
    .old_size = OLD_SZ_xen_extra_version,
};
