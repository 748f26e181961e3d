/*
 * routine.c - stage 3: the position-independent routine (section
 * rs_restore) that replaces this process's address space with the snapshot.
 * plan.c copies the section into the takeover mapping and rs_start calls
 * the copy; its arguments are in takeover.h. Built apart with its own
 * flags (Makefile ROUTINE_FLAGS), as CRIU builds criu/pie.
 *
 * There is no way back from here: a failing step prints
 * "resident: fatal PATH: STEP failed, errno N" and exits with 127
 * (RS_EXIT_FATAL). Every condition a step depends on is checked beforehand
 * (restore.c, files.c, plan.c), so that path exists for kernel surprises
 * only.
 *
 * Runs from its copy, on the live stack. May use: its own section (relative
 * calls), *a, the stack, the always-inline wrappers of sys.h. May not use:
 * anything else (globals, string constants, jump tables: all outside the
 * copy and soon unmapped), the stack protector (the canary moves under it),
 * or %fs after ARCH_SET_FS. `make check` verifies the section has no
 * rip-relative reference and no call or jump out of it.
 */
#include "takeover.h"

RS_ROUTINE static rs_u32 put_decimal(char *to, rs_u64 v)
{
	char digits[20];
	rs_u32 n = 0, i = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		to[i++] = digits[--n];
	return i;
}

RS_ROUTINE static void mark(struct rs_args *a)
{
	if (a->debug >= 3 && a->mark_count < RS_MARK_COUNT)
		rs_clock_gettime(RS_CLOCK_MONOTONIC, &a->marks[a->mark_count++]);
}

RS_ROUTINE static rs_u64 micros_since(const struct rs_timespec *t0, const struct rs_timespec *t)
{
	long us = (t->tv_sec - t0->tv_sec) * 1000000 + (t->tv_nsec - t0->tv_nsec) / 1000;
	return us > 0 ? (rs_u64)us : 0;
}

/* " [A/B/.../G us: start/unmap/...]": when each stage ended, from t0. */
RS_ROUTINE static rs_u32 put_marks(struct rs_args *a, rs_u32 n)
{
	a->line[n++] = ' ';
	a->line[n++] = '[';
	for (rs_u32 i = 0; i < a->mark_count; i++) {
		if (i)
			a->line[n++] = '/';
		n += put_decimal(a->line + n, micros_since(&a->t0, &a->marks[i]));
	}
	for (const char *s = a->marks_text; *s; s++)
		a->line[n++] = *s;
	a->line[n++] = ']';
	return n;
}

RS_ROUTINE __attribute__((noreturn)) static void fail(struct rs_args *a, int step, long r)
{
	rs_u32 n = a->fatal_len;
	for (const char *s = a->step[step]; *s; s++)
		a->fatal[n++] = *s;
	n += put_decimal(a->fatal + n, rs_failed(r) ? (rs_u64)-r : 0);
	a->fatal[n++] = '\n';
	rs_write(2, a->fatal, n);
	rs_exit_group(RS_EXIT_FATAL);
}

RS_ROUTINE static void unmap_rest(struct rs_args *a)
{
	for (rs_u32 i = 0; i < a->unmap_count; i++) {
		long r = rs_munmap(a->unmaps[i].start, a->unmaps[i].end - a->unmaps[i].start);
		if (r)
			fail(a, RS_STEP_MUNMAP, r);
	}
}

/* The vvar..vdso block back at its capture addresses: a new one mapped
 * there (the live one went with the rest: one TLB flush for all), or each
 * VMA moved with mremap, each flushed page by page. */
RS_ROUTINE static void move_vdso(struct rs_args *a)
{
	if (a->vdso_map) { /* the size of the vDSO on success */
		long r = rs_arch_prctl(RS_ARCH_MAP_VDSO_64, a->vdso_map);
		if (rs_failed(r))
			fail(a, RS_STEP_MREMAP, r);
	}
	for (rs_u32 i = 0; i < a->move_count; i++) {
		const struct rs_move *m = &a->moves[i];
		long r = rs_mremap(m->from, m->len, m->to);
		if ((rs_u64)r != m->to)
			fail(a, RS_STEP_MREMAP, r);
	}
}

/* mov $231,%eax; xor %edi,%edi; syscall: exit_group(0), RS_EXIT_STUB bytes */
RS_ROUTINE static void write_exit(rs_u64 at)
{
	rs_u64 page = at & ~(rs_u64)(RS_PAGE - 1), len = rs_page_up(at + RS_EXIT_STUB) - page;
	if (rs_failed(rs_mprotect(page, len, RS_PROT_READ | RS_PROT_WRITE)))
		rs_exit_group(RS_EXIT_MEASURE);
	volatile rs_u8 *p = (volatile rs_u8 *)at;
	p[0] = 0xb8, p[1] = 0xe7, p[2] = 0, p[3] = 0, p[4] = 0, p[5] = 0x31, p[6] = 0xff, p[7] = 0x0f, p[8] = 0x05;
	rs_mprotect(page, len, RS_PROT_READ | RS_PROT_EXEC);
}

/* For the hook's RESIDENT_MEASURE=normal: outside the section, called in place. */
void rs_end_at(rs_u64 addr) { write_exit(addr); }

/* MAP_FIXED_NOREPLACE guards against a mapping the checks missed. A kernel
 * that refuses the flag (EINVAL: a filter, an emulator) gets MAP_FIXED, as
 * safe here: every range but the kept ones is unmapped by now, and no region
 * overlaps those (restore.c). One before 4.17 takes the flag for a hint,
 * which a free range honours. */
RS_ROUTINE static void map_regions(struct rs_args *a)
{
	for (rs_u32 i = 0; i < a->map_count; i++) {
		const struct rs_map *m = &a->maps[i];
		if (!(m->flags & ~RS_MAP_POPULATE)) /* an exported file's segment: the kernel mapped it at exec */
			continue;
		long r = rs_mmap(m->start, m->len, (int)m->prot, (int)m->flags, m->fd, m->offset);
		if (r == -RS_EINVAL)
			r = rs_mmap(m->start, m->len, (int)m->prot, (int)((m->flags & ~RS_MAP_FIXED_NOREPLACE) | RS_MAP_FIXED), m->fd,
				    m->offset);
		if ((rs_u64)r != m->start)
			fail(a, RS_STEP_MMAP, r);
	}
}

/* Advice only: a kernel without MADV_POPULATE_READ (before 5.14) faults the
 * pages in later, as a normal start does. */
RS_ROUTINE static void prefault_spans(struct rs_args *a)
{
	for (rs_u32 i = 0; i < a->span_count + a->write_span_count; i++)
		rs_madvise(a->spans[i].start, a->spans[i].end - a->spans[i].start,
			   i < a->span_count ? RS_MADV_POPULATE_READ : RS_MADV_POPULATE_WRITE);
}

/* Tell the kernel the restored layout, so that /proc/PID/auxv and stat, gdb,
 * ltrace and core dumps see it: the auxv as patched, the snapshot's
 * executable and heap. No privilege is needed without a new exe_fd. A kernel
 * without CONFIG_CHECKPOINT_RESTORE refuses it: the program runs the same,
 * only tools see the layout of the exec. */
RS_ROUTINE static void set_mm(struct rs_args *a)
{
	if (a->mm.start_code)
		rs_prctl(RS_PR_SET_MM, RS_PR_SET_MM_MAP, (rs_uptr)&a->mm, sizeof a->mm);
}

/* malloc's first sbrk would fault in its new pages one by one (several
 * microseconds each here); one madvise populates them. The break moves up
 * now and libc's __curbrk, still 0 in the snapshot, is set to where it was,
 * so that sbrk hands out exactly these pages: glibc's first extension for a
 * small request is top_pad (128 KiB) + a page, which heap_prefault matches.
 * A larger first sbrk extends further, a smaller one shrinks the break back.
 * If the break cannot move or libc's word is not 0, nothing changes. */
RS_ROUTINE static void prefault_heap(struct rs_args *a)
{
	if (!a->heap_prefault || *(volatile rs_u64 *)a->heap_word)
		return;
	long cur = rs_brk(0);
	if (rs_failed(cur) || cur % RS_PAGE || rs_brk((rs_u64)cur + a->heap_prefault) != cur + (long)a->heap_prefault)
		return;
	*(volatile rs_u64 *)a->heap_word = (rs_u64)cur;
	rs_madvise((rs_u64)cur, a->heap_prefault, RS_MADV_POPULATE_WRITE); /* before 5.14: faults later, as normal */
}

RS_ROUTINE static void apply_pokes(struct rs_args *a)
{
	for (rs_u32 i = 0; i < a->poke_count; i++)
		*(volatile rs_u64 *)a->pokes[i].addr = a->pokes[i].value;
}

RS_ROUTINE static void protect_patched(struct rs_args *a)
{
	for (rs_u32 i = 0; i < a->map_count; i++) {
		const struct rs_map *m = &a->maps[i];
		if (m->prot == m->final_prot)
			continue;
		long r = rs_mprotect(m->start, m->len, (int)m->final_prot);
		if (r)
			fail(a, RS_STEP_MPROTECT, r);
	}
}

/* The kernel-side thread state ld.so set up at capture (docs/design.md):
 * without the tid store, raise() and recursive mutexes would use a stale tid. */
RS_ROUTINE static void set_thread(struct rs_args *a)
{
	long r = rs_arch_prctl(RS_ARCH_SET_FS, a->fs_base);
	if (r)
		fail(a, RS_STEP_SET_FS, r);
	if (a->tid_address) /* before glibc 2.34, libpthread's initialiser sets it, after the restore */
		*(volatile int *)a->tid_address = (int)rs_set_tid_address(a->tid_address);
	if (a->robust_head && (r = rs_set_robust_list(a->robust_head, a->robust_len)))
		fail(a, RS_STEP_ROBUST, r);
	if (a->rseq_addr && (r = rs_rseq(a->rseq_addr, a->rseq_len, 0, a->rseq_sig)))
		fail(a, RS_STEP_RSEQ, r);
}

/* The kernel state the constructors set at capture (init level): signal
 * dispositions and mask, umask, limits, the name, in their order. Last, so
 * that a handler installed here finds the whole address space. */
RS_ROUTINE static void set_kernel_state(struct rs_args *a)
{
	for (rs_u32 i = 0; i < a->kcall_count; i++) {
		const struct rs_kcall *c = &a->kcalls[i];
		long r = rs_syscall6((long)c->nr, (long)c->arg[0], (long)c->arg[1], (long)c->arg[2], (long)c->arg[3], 0, 0);
		if (rs_failed(r))
			fail(a, RS_STEP_KERNEL, r);
	}
}

RS_ROUTINE static void finish(struct rs_args *a)
{
	if (!a->close_hi || rs_close_range(a->close_lo, a->close_hi))
		for (rs_u32 i = 0; i < a->fd_count; i++)
			rs_close(a->fds[i]);
	mark(a);
	if (!a->debug)
		return;
	rs_u32 n = a->line_len;
	if (a->debug >= 2) {
		struct rs_timespec now;
		rs_clock_gettime(RS_CLOCK_MONOTONIC, &now);
		n += put_decimal(a->line + n, micros_since(&a->t0, &now));
		if (a->debug >= 3)
			n = put_marks(a, n);
		for (const char *s = a->tail; *s; s++)
			a->line[n++] = *s;
	}
	rs_write(2, a->line, n);
}

/* Return into the restored ld.so as if _dl_start had just returned there:
 * rsp = &argc - 8 holding the continuation after "mov %rax,%r12", r12 = the
 * user entry, rbp = 0. At the init level, into main's caller instead, at the
 * loads of main's arguments (rs_args.resume_sp: the rebuilt frames). The
 * jump goes through "syscall; ret" in ld.so's text with munmap(self)
 * loaded, so this mapping is gone before the ret. */
RS_ROUTINE __attribute__((noreturn)) static void resume(struct rs_args *a)
{
	rs_u64 *sp = (rs_u64 *)a->resume_sp;
	*sp = a->resume_cont;
	register rs_u64 r12 __asm__("r12") = a->user_entry;
	register rs_u64 rbp __asm__("rbp") = 0;
	register rs_u64 rax __asm__("rax") = __NR_munmap;
	register rs_u64 rdi __asm__("rdi") = a->self;
	register rs_u64 rsi __asm__("rsi") = a->self_len;
	__asm__ volatile("mov %[sp], %%rsp\n\tjmp *%[gadget]"
			 :
			 : [sp] "r"(sp), [gadget] "r"(a->gadget), "r"(r12), "r"(rbp), "r"(rax), "r"(rdi), "r"(rsi)
			 : "memory");
	__builtin_unreachable();
}

RS_ROUTINE __attribute__((noreturn, used)) void rs_takeover(struct rs_args *a)
{
	mark(a);
	unmap_rest(a);
	mark(a);
	move_vdso(a);
	mark(a);
	map_regions(a);
	if (a->end_at)
		write_exit(a->end_at);
	prefault_spans(a);
	mark(a);
	apply_pokes(a);
	set_mm(a);
	prefault_heap(a);
	protect_patched(a);
	mark(a);
	set_thread(a);
	set_kernel_state(a);
	mark(a);
	finish(a);
	resume(a);
}
