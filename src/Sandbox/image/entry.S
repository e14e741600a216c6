/*
 * serialize(): IRET to self. A vCPU released after code was patched executes this before running any
 * patched code: IRETQ is serialising on x86, so the instructions fetched after it are the new ones.
 * It works at CPL 3, returning to the same code and stack selectors.
 */
    .text
    .globl serialize
    .type serialize, @function
    .hidden serialize
serialize:
    endbr64
    movl %ss, %eax
    pushq %rax              /* SS */
    pushq %rsp              /* RSP ... */
    addq $8, (%rsp)         /* ... as it was before SS was pushed */
    pushfq                  /* RFLAGS */
    movl %cs, %eax
    pushq %rax              /* CS */
    leaq 1f(%rip), %rax
    pushq %rax              /* RIP */
    iretq
1:
    ret
    .size serialize, . - serialize

/*
 * sandbox_warn_hit: where WARN() goes (Xen traps on the ud2 of a bug frame instead). Counts the warning and
 * records its site (the call's return address less the 5 bytes of the call); every register and flag is kept.
 */
    .globl sandbox_warn_hit
    .type sandbox_warn_hit, @function
    .hidden sandbox_warn_hit
sandbox_warn_hit:
    pushfq
    pushq %rax
    lock incq sandbox_warnings(%rip)
    movq 16(%rsp), %rax
    subq $5, %rax
    movq %rax, sandbox_last_warn(%rip)
    popq %rax
    popfq
    ret
    .size sandbox_warn_hit, . - sandbox_warn_hit

    .section .note.GNU-stack, "", @progbits
