/*
 * null_audit.c - an LD_AUDIT module that does nothing: la_version returns 0
 * at once, so ld.so unloads it again. hook_overhead.py builds it to measure
 * what loading any audit module costs an exec (the floor under the hook's
 * own cost without an image). Same link flags as native/Makefile's module.
 */
__attribute__((visibility("default"))) unsigned int la_version(unsigned int version)
{
	(void)version;
	return 0;
}
