/* xen_expectations_fail: expects bytes that are not there (de ad c0 de ba be): APPLY fails with -EINVAL. */
#include "livepatch.h"

const char *xen_extra_version(void)
{
    return "Hello World";
}
