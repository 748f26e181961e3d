using Resident.Proc;

namespace Resident.Trace;

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
    /// refusal), every signal at its default and none blocked (ChildLauncher).
    /// Returns the pid.
    /// </summary>
    /// <param name="arguments">argv[1...] for the program.</param>
    /// <param name="persona">personality flags it starts with, or 0: ADDR_NO_RANDOMIZE, the same layout as every other
    /// start so made (the init level's verification runs, which compare two address spaces word by word);
    /// ADDR_COMPAT_LAYOUT, the legacy layout (a capture for export).</param>
    /// <param name="inherited">the umask, ignored and blocked signals it starts with (the shell sets the first two; the
    /// limit is set on the stopped shell by the caller); null: the umask of this process, nothing ignored or blocked.</param>
    public static int Spawn(string programPath, IReadOnlyList<string> environment, IReadOnlyList<string>? arguments = null, uint persona = 0,
        InheritedState? inherited = null)
    {
        string script = inherited is null ? StopThenExec
            : $"umask {Convert.ToString(inherited.Umask, 8)}; "
              + (inherited.Ignored.Count > 0 ? $"trap '' {string.Join(' ', inherited.Ignored)}; " : "") + StopThenExec;
        using var launcher = new ChildLauncher(Shell, [Shell, "-c", script, programPath, .. arguments ?? []], environment, "/dev/null",
            blocked: inherited?.Blocked ?? 0);
        if (persona == 0)
            return launcher.Start();
        // The persona is the calling thread's, inherited by the child it spawns: set it around the spawn only.
        int old = Interop.Personality(Interop.PersonalityQuery);
        if (old == -1 || Interop.Personality((uint)old | persona) == -1)
            throw new RefusalException("cannot set the layout of the capture (personality)");
        try { return launcher.Start(); }
        finally { Interop.Personality((uint)old); }
    }
}
