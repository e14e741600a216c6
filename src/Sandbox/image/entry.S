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

    .section .note.GNU-stack, "", @progbits
