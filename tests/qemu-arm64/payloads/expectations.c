/* xen_expectations (--expect xen_extra_version:8) and xen_expectations_fail (--expect with bytes that are not
 * there): the hello-world patch, applied only when the old function starts with the expected bytes. */
#include "livepatch.h"

const char *xen_extra_version(void)
{
    return "Hello World";
}
