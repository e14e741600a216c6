/* x86-64: every relocation type the livepatch loader supports, against the hypervisor and the payload. */
    .text
    .globl asm_func
    .type asm_func, @function
asm_func:
    call hv_function                /* R_X86_64_PLT32 */
    jmp xen_tiny                    /* R_X86_64_PLT32 */
    leaq hv_counter(%rip), %rax     /* R_X86_64_PC32 */
    leaq asm_target(%rip), %rcx     /* R_X86_64_PC32, another section of the payload */
    movabsq $hv_buffer, %rax        /* R_X86_64_64 */
    movabsq $hv_buffer+8, %rdx      /* R_X86_64_64 with an addend */
    ret

    .section .text.other, "ax", @progbits
asm_target:
    call asm_func                   /* R_X86_64_PLT32 back */
    ret

    .section .rodata, "a"
    .balign 8
    .quad hv_function               /* R_X86_64_64 */
    .quad asm_func + 4              /* R_X86_64_64 */
    .long hv_counter - .            /* R_X86_64_PC32 */
    .long asm_target - . + 16       /* R_X86_64_PC32 with an addend */

    .section .data, "aw"
    .quad asm_target

    .section .livepatch.hooks.load, "a"
    .quad asm_func

    .section .note.GNU-stack, "", @progbits
