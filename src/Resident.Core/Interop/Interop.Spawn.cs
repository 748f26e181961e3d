using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    internal const short POSIX_SPAWN_SETSIGDEF = 0x04;
    internal const short POSIX_SPAWN_SETSIGMASK = 0x08;
    internal const int O_RDONLY = 0;
    internal const int O_WRONLY = 1;

    // Opaque glibc objects, allocated generously: posix_spawn_file_actions_t is 80 bytes,
    // posix_spawnattr_t 336, sigset_t 128 on x86_64.
    internal const int SpawnFileActionsSize = 128;
    internal const int SpawnAttrSize = 512;
    internal const int SigsetSize = 128;

    // posix_spawn* return an error number and leave errno alone.
    [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int PosixSpawn(out int pid, string path, nint fileActions, nint attr, nint argv, nint envp);

    [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn_file_actions_init")]
    internal static partial int PosixSpawnFileActionsInit(nint fileActions);

    [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn_file_actions_destroy")]
    internal static partial int PosixSpawnFileActionsDestroy(nint fileActions);

    [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawn_file_actions_addopen", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int PosixSpawnFileActionsAddOpen(nint fileActions, int fd, string path, int flags, int mode);

    /// <summary>
    /// posix_spawn_file_actions_addclosefrom_np(actions, from): closes every fd from
    /// <c>from</c> up in the child. glibc has it from 2.34 only, so it is looked up at run time,
    /// not bound at start-up: 0 where it is missing.
    /// </summary>
    internal static readonly nint PosixSpawnFileActionsAddCloseFromExport =
        NativeLibrary.TryLoad(Libraries.Libc, out nint libc)
        && NativeLibrary.TryGetExport(libc, "posix_spawn_file_actions_addclosefrom_np", out nint f) ? f : 0;

    [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_init")]
    internal static partial int PosixSpawnAttrInit(nint attr);

    [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_destroy")]
    internal static partial int PosixSpawnAttrDestroy(nint attr);

    [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setflags")]
    internal static partial int PosixSpawnAttrSetFlags(nint attr, short flags);

    [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setsigmask")]
    internal static partial int PosixSpawnAttrSetSigMask(nint attr, nint sigset);

    [LibraryImport(Libraries.Libc, EntryPoint = "posix_spawnattr_setsigdefault")]
    internal static partial int PosixSpawnAttrSetSigDefault(nint attr, nint sigset);

    [LibraryImport(Libraries.Libc, EntryPoint = "sigemptyset")]
    internal static partial int SigEmptySet(nint sigset);

    [LibraryImport(Libraries.Libc, EntryPoint = "sigaddset")]
    internal static partial int SigAddSet(nint sigset, int signal);

    [LibraryImport(Libraries.Libc, EntryPoint = "sigfillset")]
    internal static partial int SigFillSet(nint sigset);
}
