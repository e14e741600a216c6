/* xen_prepost_hooks_fail: the pre-apply hook refuses with -EINVAL; no other hook may ever run. */
#include "livepatch.h"

const char *xen_extra_version(void)
{
    return "Hello World";
}

static int pre_apply_hook(livepatch_payload_t *p)
{
    (void)p;
    sample_log("pre_apply_hook: refusing.");
    return -22;
}

static void post_apply_hook(livepatch_payload_t *p)
{
    (void)p;
    sample_bug("post_apply_hook: BUG: must not run");
}

static int pre_revert_hook(livepatch_payload_t *p)
{
    (void)p;
    sample_bug("pre_revert_hook: BUG: must not run");
    return 0;
}

static void post_revert_hook(livepatch_payload_t *p)
{
    (void)p;
    sample_bug("post_revert_hook: BUG: must not run");
}

LIVEPATCH_PREAPPLY_HOOK(pre_apply_hook);
LIVEPATCH_POSTAPPLY_HOOK(post_apply_hook);
LIVEPATCH_PREREVERT_HOOK(pre_revert_hook);
LIVEPATCH_POSTREVERT_HOOK(post_revert_hook);
