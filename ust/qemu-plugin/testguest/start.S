/*
 * Entry and the recording window of the plugin's test guest: a multiboot
 * (v1) program QEMU boots with -kernel.  The window's loop is assembly so
 * that the accesses between the open and close stores are exactly the
 * buffer's: no stack, no spilled variable.
 */
#define MB_MAGIC 0x1BADB002

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long 0
    .long -MB_MAGIC

    .text
    .globl _start
_start:
    mov $stack_top, %esp
    push %ebx           /* multiboot information (physical address) */
    push %eax           /* multiboot magic */
    call guest_main
    /* guest_main never returns; stop here if it does */
1:  hlt
    jmp 1b

/*
 * void window_run(uint32_t open, uint32_t close, uint32_t buf, uint32_t bytes, uint32_t stride,
 *                 uint32_t rounds, uint32_t open0, uint32_t close1)
 * Stores one byte at open0 then at `open`, then `rounds` times: a 4-byte
 * store every `stride` bytes of [buf, buf + bytes) and a 4-byte load from
 * each page of it; then one byte at `close` then at close1.  rounds >= 1.
 * open0 and close1 are the window controls repeated (twice=1) or a scratch
 * address; either way no other access lies between the first open and the
 * first close the plugin sees.
 */
    .globl window_run
window_run:
    push %ebp
    push %ebx
    push %esi
    push %edi
    mov 24(%esp), %eax  /* close */
    mov 28(%esp), %ebx  /* buf */
    mov 32(%esp), %ecx
    add %ebx, %ecx      /* end of the buffer */
    mov 36(%esp), %edx  /* stride */
    mov 40(%esp), %esi  /* rounds */
    mov 44(%esp), %ebp  /* open0 */
    mov 20(%esp), %edi  /* open */
    movb $1, (%ebp)
    movb $1, (%edi)
2:  mov %ebx, %edi
3:  mov %edi, (%edi)
    add %edx, %edi
    cmp %ecx, %edi
    jb 3b
    mov %ebx, %edi
4:  mov (%edi), %ebp
    add $4096, %edi
    cmp %ecx, %edi
    jb 4b
    dec %esi
    jnz 2b
    movb $1, (%eax)
    mov 48(%esp), %edi  /* close1 */
    movb $1, (%edi)
    pop %edi
    pop %esi
    pop %ebx
    pop %ebp
    ret

/*
 * void svm_run(uint32_t vmcb, uint32_t open, uint32_t close, uint32_t rounds, uint32_t host_buf,
 *              uint32_t early)
 * Opens the window, then `rounds` times: a host store to host_buf, the
 * VMCB's RIP reset to guest_entry (a host store), VMRUN, and a host store to
 * host_buf + 4 after the #VMEXIT; then closes the window.  VMRUN keeps only
 * EAX for the host, so the guest touches no register the host loop uses but
 * EDI and EBP.  early != 0: the code after VMRUN runs once first, so QEMU
 * translates it before the VMRUN (the case the plugin cannot follow).
 */
    .globl svm_run
svm_run:
    push %ebp
    push %ebx
    push %esi
    push %edi
    mov 20(%esp), %eax  /* vmcb */
    mov 24(%esp), %ebx  /* open */
    mov 28(%esp), %ecx  /* close */
    mov 32(%esp), %esi  /* rounds */
    mov 36(%esp), %edx  /* host_buf */
    movb $1, (%ebx)
    cmpl $0, 40(%esp)   /* early */
    je 5f
    inc %esi
    jmp 8f
5:  mov %esi, (%edx)
    movl $guest_entry, 0x578(%eax)
    vmrun
8:  mov %esi, 4(%edx)
    dec %esi
    jnz 5b
    movb $1, (%ecx)
    pop %edi
    pop %esi
    pop %ebx
    pop %ebp
    ret

/* The nested guest: 4-byte stores every 64 bytes of [GUEST_BUF, +16 KiB), then
 * VMMCALL (intercepted: #VMEXIT to the host). */
#define GUEST_BUF 0x500000
    .globl guest_entry
guest_entry:
    mov $GUEST_BUF, %edi
6:  mov %edi, (%edi)
    add $64, %edi
    cmp $(GUEST_BUF + 16384), %edi
    jb 6b
    vmmcall
7:  jmp 7b

    .bss
    .balign 16
    .space 16384
stack_top:

    .section .note.GNU-stack, "", @progbits
