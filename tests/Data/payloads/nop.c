/* NOPs out the first bytes of xen_minor_version (Xen's xen_nop test): no new code, an absolute old_addr. */
#include "livepatch.h"

LIVEPATCH_FUNC(livepatch_nop) = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .old_addr = (void *)ADDR_xen_minor_version,
    .new_addr = 0,
    .new_size = 5,
    .old_size = SZ_xen_minor_version,
};
