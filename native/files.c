/*
 * files.c - stage 2, first half: the files an image depends on, checked
 * against the file system (the rule HookContract/Staleness.cs mirrors), and
 * this exec's rseq registration against the capture's. Opens and stats
 * only: nothing the program could notice changes.
 */
#include "restore.h"

static int same_file(const struct rs_file *f, const struct rs_stat *st)
{
	return st->st_dev == f->dev && st->st_ino == f->ino && (rs_u64)st->st_size == f->size && (rs_i64)st->st_mtime_sec == f->mtime_sec &&
	       (rs_i64)st->st_mtime_nsec == f->mtime_nsec && (rs_i64)st->st_ctime_sec == f->ctime_sec &&
	       (rs_i64)st->st_ctime_nsec == f->ctime_nsec;
}

/* The words HookContract/Staleness.cs uses too (StalenessRuleTests). */
static const char *changed_reason(const struct rs_image *img, rs_u32 i, long r)
{
	int missing = r == -RS_ENOENT || r == -RS_ENOTDIR;
	if (i == 0)
		return "executable changed";
	if (img->files[i].flags == RS_FILE_MAPPED)
		return missing ? "library missing" : "library changed";
	return missing ? "file missing" : "file changed";
}

/* MAPPED files are opened (the routine maps them from these fds, which also
 * pins the very inode that was checked); STAMP files are only stat'ed. */
static int check_file(const struct rs_image *img, rs_u32 i, int *fd, struct rs_why *why)
{
	const struct rs_file *f = &img->files[i];
	const char *path = img->strings + f->path;
	struct rs_stat st;
	long r;
	*fd = -1;
	if (f->flags == RS_FILE_ABSENT) {
		r = rs_stat(path, &st);
		return r == -RS_ENOENT || r == -RS_ENOTDIR ? 1 : rs_refuse(why, "file appeared", path);
	}
	if (f->flags == RS_FILE_STAMP) {
		r = rs_stat(path, &st);
	} else {
		/* non-blocking: a FIFO put in a library's place fails same_file, it does not hang us */
		r = rs_openat(RS_AT_FDCWD, path, RS_O_RDONLY | RS_O_CLOEXEC | RS_O_NONBLOCK | RS_O_NOCTTY);
		if (r >= 0) {
			*fd = (int)r;
			r = rs_fstat(*fd, &st);
		}
	}
	if (r < 0 || !same_file(f, &st))
		return rs_refuse(why, changed_reason(img, i, r < 0 ? r : 0), path);
	return 1;
}

void rs_close_files(const int *fds, rs_u32 count)
{
	for (rs_u32 i = 0; i < count; i++)
		if (fds[i] >= 0)
			rs_close(fds[i]);
}

int rs_open_files(const struct rs_image *img, int *fds, struct rs_why *why)
{
	for (rs_u32 i = 0; i < img->file_count; i++)
		fds[i] = -1;
	for (rs_u32 i = 0; i < img->file_count; i++)
		if (!check_file(img, i, &fds[i], why)) {
			rs_close_files(fds, i + 1);
			return 0;
		}
	return 1;
}

int rs_takeover_denied(void) { return rs_denied(rs_munmap(1, 0)) || rs_denied(rs_mremap(1, 0, 0)) || rs_denied(rs_set_robust_list(0, 0)); }

int rs_check_rseq(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	const struct rs_header *h = img->h;
	if (!live->rseq_area != !h->rseq_addr) /* e.g. a seccomp filter refused this exec's rseq() */
		return rs_refuse(why, "rseq differs",
				 live->rseq_area ? "registered now, not at capture" : "registered at capture, not now");
	if (!live->rseq_area)
		return 1;
	if (rs_rseq(live->rseq_area, h->rseq_len, 0, h->rseq_sig) != -RS_EBUSY)
		return rs_refuse(why, "rseq differs", "this exec's registration is not the capture's length and signature");
	return 1;
}
