/* xen_prepost_hooks: the hello-world patch with the four vetoing hooks. The first pre-revert refuses
 * (-1, EPERM); the second lets the revert happen; post-revert checks every count. */
#include "livepatch.h"

static int pre_apply_cnt, post_apply_cnt, pre_revert_cnt, post_revert_cnt;

const char *xen_extra_version(void)
{
    return "Hello World";
}

static int pre_apply_hook(livepatch_payload_t *p)
{
    (void)p;
    pre_apply_cnt++;
    sample_log("pre_apply_hook: Hook starting.");
    return 0;
}

static void post_apply_hook(livepatch_payload_t *p)
{
    post_apply_cnt++;
    sample_log_number("post_apply_hook: rc ", p->rc);
}

static int pre_revert_hook(livepatch_payload_t *p)
{
    (void)p;
    pre_revert_cnt++;
    sample_log_number("pre_revert_hook: call ", pre_revert_cnt);
    return pre_revert_cnt == 1 ? -1 : 0; /* the first revert is vetoed */
}

static void post_revert_hook(livepatch_payload_t *p)
{
    (void)p;
    post_revert_cnt++;
    if (pre_apply_cnt != 1 || post_apply_cnt != 1 || pre_revert_cnt != 2 || post_revert_cnt != 1)
        sample_bug("post_revert_hook: BUG: unexpected hook counts");
    else
        sample_log("post_revert_hook: counts as expected.");
}

LIVEPATCH_PREAPPLY_HOOK(pre_apply_hook);
LIVEPATCH_POSTAPPLY_HOOK(post_apply_hook);
LIVEPATCH_PREREVERT_HOOK(pre_revert_hook);
LIVEPATCH_POSTREVERT_HOOK(post_revert_hook);
