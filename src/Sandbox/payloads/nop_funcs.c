/*
 * xen_nop: no new code; NOPs out xen_minor_version but its final 'ret' (after its ENDBR64), so it returns
 * whatever its caller left in the return register. No data: it may be reverted and applied again.
 * This is its function entry in C for the gcc/objcopy/ld recipe (tools/payload/build-payload.sh), the
 * oracle for 'xen-livepatch build --nop xen_minor_version:-1 --resolve', which needs no source at all.
 */
#include "livepatch.h"

static const char nop_patch_this_fnc[] __attribute__((section(".livepatch.strings"))) = "xen_minor_version";

LIVEPATCH_FUNC(livepatch_nop) = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .name = nop_patch_this_fnc,
    .old_addr = (void *)ADDR_xen_minor_version,
    .new_addr = 0,
    .new_size = OLD_SZ_xen_minor_version - 1,
    .old_size = OLD_SZ_xen_minor_version,
};
