using System.Runtime.InteropServices;

namespace Resident.Capture;

/// <summary>
/// Starts the program stopped, without System.Diagnostics.Process (its SIGCHLD handling
/// reaps ptrace stops). A shell stops itself before exec'ing the program, so the tracer can
/// seize it and see the exec from its first instruction:
/// <c>/bin/sh -c 'kill -STOP $$; exec "$0" "$@"' PROGRAM</c>.
/// </summary>
internal static class Spawner
{
    const string Shell = "/bin/sh";
    const string StopThenExec = "kill -STOP $$; exec \"$0\" \"$@\"";

    /// <summary>
    /// Spawns the stopping shell with stdin/stdout/stderr on /dev/null and no other fd (this
    /// process may have inherited some without O_CLOEXEC, and an fd open at the stop is a
    /// refusal), every signal at its default and none blocked (.NET ignores SIGPIPE, which
    /// exec would pass on).
    /// Returns the pid.
    /// </summary>
    public static unsafe int Spawn(string programPath, IReadOnlyList<string> environment)
    {
        string[] argv = [Shell, "-c", StopThenExec, programPath];
        nint argvBlock = ToNative(argv), envBlock = ToNative(environment);
        nint actions = (nint)NativeMemory.AllocZeroed(Interop.SpawnFileActionsSize);
        nint attr = (nint)NativeMemory.AllocZeroed(Interop.SpawnAttrSize);
        nint sigset = (nint)NativeMemory.AllocZeroed(Interop.SigsetSize);
        try
        {
            Interop.CheckReturnedError(Interop.PosixSpawnFileActionsInit(actions), "posix_spawn_file_actions_init");
            Interop.CheckReturnedError(Interop.PosixSpawnFileActionsAddOpen(actions, 0, "/dev/null", Interop.O_RDONLY, 0), "posix_spawn_file_actions_addopen");
            Interop.CheckReturnedError(Interop.PosixSpawnFileActionsAddOpen(actions, 1, "/dev/null", Interop.O_WRONLY, 0), "posix_spawn_file_actions_addopen");
            Interop.CheckReturnedError(Interop.PosixSpawnFileActionsAddOpen(actions, 2, "/dev/null", Interop.O_WRONLY, 0), "posix_spawn_file_actions_addopen");
            Interop.CheckReturnedError(Interop.PosixSpawnFileActionsAddCloseFrom(actions, 3), "posix_spawn_file_actions_addclosefrom_np");
            Interop.CheckReturnedError(Interop.PosixSpawnAttrInit(attr), "posix_spawnattr_init");
            Interop.SigEmptySet(sigset);
            Interop.CheckReturnedError(Interop.PosixSpawnAttrSetSigMask(attr, sigset), "posix_spawnattr_setsigmask");
            Interop.SigFillSet(sigset);
            Interop.CheckReturnedError(Interop.PosixSpawnAttrSetSigDefault(attr, sigset), "posix_spawnattr_setsigdefault");
            Interop.CheckReturnedError(Interop.PosixSpawnAttrSetFlags(attr, Interop.POSIX_SPAWN_SETSIGMASK | Interop.POSIX_SPAWN_SETSIGDEF), "posix_spawnattr_setflags");
            Interop.CheckReturnedError(Interop.PosixSpawn(out int pid, Shell, actions, attr, argvBlock, envBlock), "posix_spawn(/bin/sh)");
            return pid;
        }
        finally
        {
            Interop.PosixSpawnFileActionsDestroy(actions);
            Interop.PosixSpawnAttrDestroy(attr);
            NativeMemory.Free((void*)actions);
            NativeMemory.Free((void*)attr);
            NativeMemory.Free((void*)sigset);
            FreeNative(argvBlock, argv.Length);
            FreeNative(envBlock, environment.Count);
        }
    }

    /// <summary>A NULL-terminated char*[] of UTF-8 copies.</summary>
    static unsafe nint ToNative(IReadOnlyList<string> strings)
    {
        var block = (nint*)NativeMemory.AllocZeroed((nuint)(strings.Count + 1), (nuint)sizeof(nint));
        for (int i = 0; i < strings.Count; i++)
            block[i] = Marshal.StringToCoTaskMemUTF8(strings[i]);
        return (nint)block;
    }

    static unsafe void FreeNative(nint block, int count)
    {
        for (int i = 0; i < count; i++)
            Marshal.FreeCoTaskMem(((nint*)block)[i]);
        NativeMemory.Free((void*)block);
    }
}
