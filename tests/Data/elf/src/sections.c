/* Named sections, like a livepatch payload: a table of structures with pointers, hooks, metadata. */
struct patch_func {
    const char *name;
    void *new_addr;
    void *old_addr;
    unsigned int new_size;
    unsigned int old_size;
    unsigned char version;
    unsigned char pad[39];
    unsigned char expect[32];
};

extern const char *original_function(void);
const char *replacement_function(void) { return "replaced"; }

static const char patch_this[] = "original_function";

struct patch_func patch_table __attribute__((section(".livepatch.funcs"), used)) = {
    .name = patch_this,
    .new_addr = (void *)replacement_function,
    .old_addr = (void *)original_function,
    .new_size = 8,
    .old_size = 12,
    .version = 2,
};

static void load_hook(void) { }
static void unload_hook(void) { }
void (*load_hooks[])(void) __attribute__((section(".livepatch.hooks.load"), used)) = { load_hook };
void (*unload_hooks[])(void) __attribute__((section(".livepatch.hooks.unload"), used)) = { unload_hook };

static const char metadata[] __attribute__((section(".modinfo"), used)) = "LIVEPATCH_RULEZ";

__thread int per_thread_value = 5;      /* TLS */
__thread int per_thread_zero;

int read_tls(void) { return per_thread_value + per_thread_zero; }
