/* xen_replace_world: for REPLACE. The extraversion Linux reads is 16 bytes, so dom0 sees "Hello Again Wor". */
#include "livepatch.h"

const char *xen_extra_version(void)
{
    return "Hello Again World!";
}
