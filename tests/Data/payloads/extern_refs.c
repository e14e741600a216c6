/* Replaces xen_minor_version with code that calls into and reads from the hypervisor. */
#include "livepatch.h"

extern int hv_counter;
extern int hv_function(int x);

static const char extern_refs_patch_this_fnc[] = "xen_minor_version";

int xen_minor_version(void)
{
    return hv_function(hv_counter) + 1;
}

LIVEPATCH_FUNC(livepatch_extern_refs) = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .name = extern_refs_patch_this_fnc,
    .new_addr = xen_minor_version,
    .old_addr = 0,
    .new_size = SZ_xen_minor_version,
    .old_size = 6,
};
