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
    public static int Spawn(string programPath, IReadOnlyList<string> environment)
    {
        using var launcher = new ChildLauncher(Shell, [Shell, "-c", StopThenExec, programPath], environment, "/dev/null");
        return launcher.Start();
    }
}
