/*
 * elf.h - ELF, only as much as the native entry points read of objects the
 * kernel or ld.so mapped: a loaded object's extent and dynamic section, and a
 * GNU-hash symbol lookup (ld.so's exported symbols, the vDSO's extent). Every
 * function is always inline: each lands in the section of its caller (the
 * hook's no-image path, hook.ld).
 */
#ifndef RESIDENT_ELF_H
#define RESIDENT_ELF_H

#include "sys.h"

struct elf_ehdr {
	rs_u8 ident[16];
	unsigned short type, machine;
	rs_u32 version;
	rs_u64 entry, phoff, shoff;
	rs_u32 flags;
	unsigned short ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

struct elf_phdr {
	rs_u32 type, flags;
	rs_u64 offset, vaddr, paddr, filesz, memsz, align;
};

struct elf_dyn {
	rs_i64 tag;
	rs_u64 val;
};

struct elf_sym {
	rs_u32 name;
	rs_u8 info, other;
	unsigned short shndx;
	rs_u64 value, size;
};

#define PT_LOAD 1
#define PT_DYNAMIC 2
#define DT_NULL 0
#define DT_STRTAB 5
#define DT_SYMTAB 6
#define DT_GNU_HASH 0x6ffffef5

/* ld.so relocates its own dynamic section's pointers on most targets;
 * accept both forms. */
RS_INLINE rs_u64 rs_dyn_ptr(rs_u64 base, rs_u64 v) { return v < base ? v + base : v; }

RS_INLINE rs_u32 rs_gnu_hash(const char *s)
{
	rs_u32 h = 5381;
	for (; *s; s++)
		h = h * 33 + (rs_u8)*s;
	return h;
}

/* A loaded ELF object (ld.so, the vdso): its PT_DYNAMIC and, in size, how
 * many bytes from base its PT_LOAD segments cover (base is their vaddr 0). */
RS_INLINE const struct elf_dyn *rs_elf_loaded(rs_u64 base, rs_u64 *size)
{
	const struct elf_ehdr *e = (const struct elf_ehdr *)base;
	const struct elf_phdr *ph = (const struct elf_phdr *)(base + e->phoff);
	const struct elf_dyn *dyn = 0;
	*size = 0;
	for (int i = 0; i < e->phnum; i++) {
		if (ph[i].type == PT_DYNAMIC)
			dyn = (const struct elf_dyn *)(base + ph[i].vaddr);
		if (ph[i].type == PT_LOAD && ph[i].vaddr + ph[i].memsz > *size)
			*size = rs_page_up(ph[i].vaddr + ph[i].memsz);
	}
	return dyn;
}

/* The address of ld.so's exported symbol name, by its GNU hash table. */
RS_INLINE rs_u64 rs_elf_symbol(rs_u64 base, const struct elf_dyn *dyn, const char *name)
{
	const rs_u32 *gh = 0;
	const struct elf_sym *syms = 0;
	const char *strs = 0;
	for (; dyn->tag != DT_NULL; dyn++) {
		if (dyn->tag == DT_GNU_HASH)
			gh = (const rs_u32 *)rs_dyn_ptr(base, dyn->val);
		else if (dyn->tag == DT_SYMTAB)
			syms = (const struct elf_sym *)rs_dyn_ptr(base, dyn->val);
		else if (dyn->tag == DT_STRTAB)
			strs = (const char *)rs_dyn_ptr(base, dyn->val);
	}
	if (!gh || !syms || !strs || !gh[0])
		return 0;
	rs_u32 h = rs_gnu_hash(name), nbuckets = gh[0], symoffset = gh[1], bloom_words = gh[2];
	const rs_u32 *buckets = gh + 4 + 2 * bloom_words; /* bloom words are 64-bit */
	const rs_u32 *chain = buckets + nbuckets;
	rs_u32 i = buckets[h % nbuckets];
	if (i < symoffset)
		return 0;
	for (;; i++) {
		rs_u32 ch = chain[i - symoffset];
		if ((ch | 1) == (h | 1) && syms[i].shndx && rs_streq(strs + syms[i].name, name))
			return base + syms[i].value;
		if (ch & 1)
			return 0;
	}
}

#endif
