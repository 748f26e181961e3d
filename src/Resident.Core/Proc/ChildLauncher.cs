using System.Runtime.InteropServices;

namespace Resident.Proc;

/// <summary>
/// One command, prepared once and started many times with posix_spawn (the capture's stopped
/// shell, every benchmark run): argv, envp and the file actions are built before a timing loop,
/// so the measuring process adds as little as it can to each run. stdin comes from a file, stdout and stderr go to files (normally /dev/null); no
/// other fd is inherited, every signal is at its default and none is blocked (.NET ignores
/// SIGPIPE, and exec would pass that on to the program).
/// </summary>
internal sealed unsafe class ChildLauncher : IDisposable
{
    readonly string path;
    readonly nint argv, envp, actions, attr, sigset;
    readonly int argc, envc;

    /// <param name="blocked">signals blocked in the child, bit n-1 for signal n (an init level's verification run); none by default.</param>
    public ChildLauncher(string path, IReadOnlyList<string> argv, IReadOnlyList<string> env,
        string stdinPath, string stdoutPath = "/dev/null", string stderrPath = "/dev/null", ulong blocked = 0)
    {
        this.path = path;
        (this.argv, argc) = (ToNative(argv), argv.Count);
        (envp, envc) = (ToNative(env), env.Count);
        actions = (nint)NativeMemory.AllocZeroed(Interop.SpawnFileActionsSize);
        attr = (nint)NativeMemory.AllocZeroed(Interop.SpawnAttrSize);
        sigset = (nint)NativeMemory.AllocZeroed(Interop.SigsetSize);
        Interop.CheckReturnedError(Interop.PosixSpawnFileActionsInit(actions), "posix_spawn_file_actions_init");
        Redirect(0, stdinPath, Interop.O_RDONLY);
        Redirect(1, stdoutPath, Interop.O_WRONLY);
        Redirect(2, stderrPath, Interop.O_WRONLY);
        if (Interop.PosixSpawnFileActionsAddCloseFromExport != 0)
            Interop.CheckReturnedError(((delegate* unmanaged<nint, int, int>)Interop.PosixSpawnFileActionsAddCloseFromExport)(actions, 3),
                "posix_spawn_file_actions_addclosefrom_np");
        Interop.CheckReturnedError(Interop.PosixSpawnAttrInit(attr), "posix_spawnattr_init");
        Interop.SigEmptySet(sigset);
        for (int signal = 1; signal <= 64; signal++)
            if ((blocked >> (signal - 1) & 1) != 0)
                Interop.SigAddSet(sigset, signal);
        Interop.CheckReturnedError(Interop.PosixSpawnAttrSetSigMask(attr, sigset), "posix_spawnattr_setsigmask");
        Interop.SigFillSet(sigset);
        Interop.CheckReturnedError(Interop.PosixSpawnAttrSetSigDefault(attr, sigset), "posix_spawnattr_setsigdefault");
        Interop.CheckReturnedError(Interop.PosixSpawnAttrSetFlags(attr, Interop.POSIX_SPAWN_SETSIGMASK | Interop.POSIX_SPAWN_SETSIGDEF), "posix_spawnattr_setflags");
    }

    /// <summary>Starts the program; returns its pid (the caller reaps it).</summary>
    public int Start()
    {
        if (Interop.PosixSpawnFileActionsAddCloseFromExport == 0)
            CloseOnExecFrom(3);
        Interop.CheckReturnedError(Interop.PosixSpawn(out int pid, path, actions, attr, argv, envp), $"posix_spawn({path})");
        return pid;
    }

    /// <summary>Starts the program, waits for it, and returns its wait status and CPU times.</summary>
    public (int Status, Interop.RUsage Usage) Run()
    {
        int status = Interop.Wait4(Start(), out var usage);
        return (status, usage);
    }

    public void Dispose()
    {
        Interop.PosixSpawnFileActionsDestroy(actions);
        Interop.PosixSpawnAttrDestroy(attr);
        NativeMemory.Free((void*)actions);
        NativeMemory.Free((void*)attr);
        NativeMemory.Free((void*)sigset);
        FreeNative(argv, argc);
        FreeNative(envp, envc);
    }

    /// <summary>
    /// Where glibc cannot close the parent's fds in the child (before 2.34): every fd from
    /// <paramref name="first"/> up gets FD_CLOEXEC here, so the exec closes it. .NET opens its
    /// own files close-on-exec already; this catches fds inherited from resident's parent.
    /// </summary>
    static void CloseOnExecFrom(int first)
    {
        foreach (string entry in Directory.GetFileSystemEntries("/proc/self/fd"))
            if (int.TryParse(Path.GetFileName(entry), out int fd) && fd >= first
                && Interop.Fcntl(fd, Interop.F_GETFD, 0) is int flags and >= 0 && (flags & Interop.FD_CLOEXEC) == 0)
                Interop.Fcntl(fd, Interop.F_SETFD, flags | Interop.FD_CLOEXEC);
    }

    void Redirect(int fd, string file, int flags) =>
        Interop.CheckReturnedError(Interop.PosixSpawnFileActionsAddOpen(actions, fd, file, flags, 0), $"posix_spawn_file_actions_addopen({file})");

    /// <summary>A NULL-terminated char*[] of UTF-8 copies.</summary>
    static nint ToNative(IReadOnlyList<string> strings)
    {
        var block = (nint*)NativeMemory.AllocZeroed((nuint)(strings.Count + 1), (nuint)sizeof(nint));
        for (int i = 0; i < strings.Count; i++)
            block[i] = Marshal.StringToCoTaskMemUTF8(strings[i]);
        return (nint)block;
    }

    static void FreeNative(nint block, int count)
    {
        for (int i = 0; i < count; i++)
            Marshal.FreeCoTaskMem(((nint*)block)[i]);
        NativeMemory.Free((void*)block);
    }

    /// <summary>"exit N" or "signal N" for a wait status.</summary>
    public static string Describe(int status) =>
        Interop.WIfSignaled(status) ? $"signal {Interop.WTermSig(status)}" : $"exit {Interop.WExitStatus(status)}";
}
