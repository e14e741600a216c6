/* xen_action_hooks_noapply: the apply action hook fails with -EINVAL without marking anything; the
 * payload stays CHECKED. */
#include "livepatch.h"

static int apply_cnt;

const char *xen_extra_version(void)
{
    return "Hello World";
}

static int apply_hook(livepatch_payload_t *p)
{
    (void)p;
    apply_cnt++;
    sample_log("action apply_hook: refusing.");
    return -22;
}

static void post_apply_hook(livepatch_payload_t *p)
{
    if (apply_cnt != 1 || p->fstate[0].applied != LIVEPATCH_FUNC_NOT_APPLIED || p->rc != -22)
        sample_bug("noapply post_apply_hook: BUG: the function is applied or the hook did not run once");
    else
        sample_log("noapply post_apply_hook: nothing applied, as expected.");
}

LIVEPATCH_APPLY_HOOK(apply_hook);
LIVEPATCH_POSTAPPLY_HOOK(post_apply_hook);
