/* xen_prepost_hooks_fail: the pre-apply hook refuses with -EINVAL; no other hook may ever run. */
#include "livepatch.h"

const char *xen_extra_version(void)
{
    return "Hello World";
}

static int pre_apply_hook(livepatch_payload_t *p)
{
    (void)p;
    printk("xen_prepost_hooks_fail: pre_apply_hook: refusing.\n");
    return -22;
}

static void post_apply_hook(livepatch_payload_t *p)
{
    (void)p;
    printk("xen_prepost_hooks_fail: post_apply_hook: BUG: must not run\n");
}

static int pre_revert_hook(livepatch_payload_t *p)
{
    (void)p;
    printk("xen_prepost_hooks_fail: pre_revert_hook: BUG: must not run\n");
    return 0;
}

static void post_revert_hook(livepatch_payload_t *p)
{
    (void)p;
    printk("xen_prepost_hooks_fail: post_revert_hook: BUG: must not run\n");
}

LIVEPATCH_PREAPPLY_HOOK(pre_apply_hook);
LIVEPATCH_POSTAPPLY_HOOK(post_apply_hook);
LIVEPATCH_PREREVERT_HOOK(pre_revert_hook);
LIVEPATCH_POSTREVERT_HOOK(post_revert_hook);
