/* xen_action_hooks: apply and revert action hooks replace the core's patching: they only flip each
 * function's state, so nothing is patched and the extraversion does not change. */
#include "livepatch.h"

static int apply_cnt, revert_cnt;

const char *xen_extra_version(void)
{
    return "Hello World";
}

static int apply_hook(livepatch_payload_t *p)
{
    for (uint32_t i = 0; i < p->nfuncs; i++) {
        p->fstate[i].applied = LIVEPATCH_FUNC_APPLIED;
        apply_cnt++;
    }
    sample_log("action apply_hook: functions marked applied.");
    return 0;
}

static int revert_hook(livepatch_payload_t *p)
{
    for (uint32_t i = 0; i < p->nfuncs; i++) {
        p->fstate[i].applied = LIVEPATCH_FUNC_NOT_APPLIED;
        revert_cnt++;
    }
    sample_log("action revert_hook: functions marked reverted.");
    return 0;
}

static void post_revert_hook(livepatch_payload_t *p)
{
    (void)p;
    if (apply_cnt != 1 || revert_cnt != 1)
        sample_bug("action post_revert_hook: BUG: unexpected counts");
}

LIVEPATCH_APPLY_HOOK(apply_hook);
LIVEPATCH_REVERT_HOOK(revert_hook);
LIVEPATCH_POSTREVERT_HOOK(post_revert_hook);
