/* xen_replace_world: for REPLACE; old_addr 0, so the core resolves the name. The extraversion buffer is
 * 16 bytes, so readers see "Hello Again Wor". */
#include "livepatch.h"

const char *xen_extra_version(void)
{
    return "Hello Again World!";
}
