/* xen_expectations: the hello-world patch, expecting the first 8 bytes of xen_extra_version as they are. */
#include "livepatch.h"

const char *xen_extra_version(void)
{
    return "Hello World";
}
