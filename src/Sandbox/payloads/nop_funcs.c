/* xen_nop: no new code; NOPs out xen_minor_version but its final 'ret' (after its ENDBR64), so it returns
 * whatever its caller left in the return register. No data: it may be reverted and applied again. */
#include "livepatch.h"

LIVEPATCH_FUNC(livepatch_nop) = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .old_addr = (void *)ADDR_xen_minor_version,
    .new_addr = 0,
    .new_size = OLD_SZ_xen_minor_version - 1,
    .old_size = OLD_SZ_xen_minor_version,
};
