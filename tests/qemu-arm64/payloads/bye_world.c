/* xen_bye_world: "Bye World!", stacked on xen_hello_world (its .livepatch.depends is hello_world's build-id). */
#include "livepatch.h"

const char *xen_extra_version(void)
{
    return "Bye World!";
}
