/* Replaces xen_extra_version with "Bye World!"; stacked on hello_world (Xen's xen_bye_world test). */
#include "livepatch.h"

static const char bye_world_patch_this_fnc[] = "xen_extra_version";

const char *xen_extra_version(void)
{
    return "Bye World!";
}

LIVEPATCH_FUNC(livepatch_xen_bye_world) = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .name = bye_world_patch_this_fnc,
    .new_addr = xen_extra_version,
    .old_addr = (void *)ADDR_xen_extra_version,
    .new_size = SZ_xen_extra_version,
    .old_size = 8,
};
