/* xen_bye_world: "Bye World!", stacked on xen_hello_world (its .livepatch.depends is hello_world's build-id). */
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
    .old_size = OLD_SZ_xen_extra_version,
};
