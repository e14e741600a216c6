/* Functions: globals, statics, recursion, calls through the PLT, tail calls, variadic-free leaf code. */
static int helper(int x) { return x * 3 + 1; }

int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

__attribute__((noinline)) int twice(int (*fn)(int), int v) { return fn(fn(v)); }

int compose(int v) { return twice(helper, v) + fib(v & 7); }

__attribute__((weak)) int weak_hook(int v) { return v; }

extern int external_counter;
extern int external_function(int);

int uses_externals(int v) { return external_function(v) + external_counter + weak_hook(v); }

__attribute__((visibility("hidden"))) int hidden_function(void) { return 42; }

int alias_target(void) { return 7; }
int alias_name(void) __attribute__((alias("alias_target")));
