using Resident.Elf;
using Resident.Proc;

namespace Resident.Trace;

/// <summary>
/// Runs a program to the resume point (ld.so's <c>_dl_start_user</c>) under ptrace and hands
/// it over stopped (docs/design.md, "Pipeline").
/// </summary>
public static class Tracer
{
    /// <summary>Longest a start may take from the spawn to the stop.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How long a killed run may take to end before the capture gives up on it.</summary>
    internal static readonly TimeSpan KillGrace = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Checks the file (no process is started for a refusal), starts it with no arguments,
    /// the given environment minus LD_AUDIT and RESIDENT_*, plus LD_BIND_NOW=1 (without it
    /// if the program cannot start so: LazyBind), and stops it where ld.so would call the
    /// constructors. Throws RefusalException with a one-line reason; no process is left then.
    /// </summary>
    public static IStoppedProcess RunToResumePoint(string programPath, IReadOnlyDictionary<string, string> environment,
        CaptureOptions? options = null) =>
        RunToResumePoint(ProgramFile.Resolve(programPath), environment, DefaultTimeout, options ?? CaptureOptions.Default);

    /// <summary>As above, for a program already resolved (the checks use its stat).</summary>
    public static IStoppedProcess RunToResumePoint(ProgramFile program, IReadOnlyDictionary<string, string> environment,
        CaptureOptions? options = null) =>
        RunToResumePoint(program, environment, DefaultTimeout, options ?? CaptureOptions.Default);

    /// <param name="timeout">for each start (with LD_BIND_NOW, then without).</param>
    internal static IStoppedProcess RunToResumePoint(string programPath, IReadOnlyDictionary<string, string> environment, TimeSpan timeout,
        CaptureOptions? options = null) =>
        RunToResumePoint(ProgramFile.Resolve(programPath), environment, timeout, options);

    internal static IStoppedProcess RunToResumePoint(ProgramFile program, IReadOnlyDictionary<string, string> environment, TimeSpan timeout,
        CaptureOptions? options = null)
    {
        var file = ProgramFileCheck.Check(program);
        return Run(file.ProgramPath, (exe, _) => exe == file.ProgramPath ? file
            : throw new RefusalException($"the shell executed {exe} instead"), environment, timeout, options ?? CaptureOptions.Default);
    }

    /// <summary>
    /// resident -f: starts <paramref name="wrapperPath"/> (a script or program, not checked)
    /// and stops in the first dynamically linked program it execs that could be registered;
    /// IStoppedProcess.ProgramPath names that program. Execs that fail the file checks
    /// (static, setuid, another loader) are let run on.
    /// </summary>
    public static IStoppedProcess RunThroughWrapper(string wrapperPath, IReadOnlyDictionary<string, string> environment,
        CaptureOptions? options = null) =>
        Run(wrapperPath, FirstRegistrableAfterWrapper, environment, DefaultTimeout, options ?? CaptureOptions.Default);

    static ProgramFileCheck.Result? FirstRegistrableAfterWrapper(string exe, int index)
    {
        if (index == 0)
            return null;   // the wrapper itself, or the interpreter of its #! line
        try { return ProgramFileCheck.Check(exe); }
        catch (RefusalException) { return null; }
    }

    static IStoppedProcess Run(string launchPath, ExecChoice choose, IReadOnlyDictionary<string, string> environment, TimeSpan timeout,
        CaptureOptions options)
    {
        var thread = new TracerThread();
        try
        {
            return TryRun(thread, launchPath, choose, environment, timeout, options, bindNow: true)
                ?? TryRun(thread, launchPath, choose, environment, timeout, options, bindNow: false)!;
        }
        catch
        {
            thread.Dispose();
            throw;
        }
    }

    /// <summary>The stopped process; null when it ended first with LD_BIND_NOW (the caller retries lazily).</summary>
    static StoppedTracee? TryRun(TracerThread thread, string launchPath, ExecChoice choose, IReadOnlyDictionary<string, string> environment,
        TimeSpan timeout, CaptureOptions options, bool bindNow)
    {
        StopState? stop;
        Microsoft.Win32.SafeHandles.SafeFileHandle pidfd;
        var log = new SyscallLog();
        using (var run = new PtraceRun(launchPath, choose, log, options.StackLimit, options.Variant, options.CompatLayout))
        {
            stop = AwaitStop(thread, run, timeout, [.. CaptureEnvironment(environment, bindNow), .. options.Variant?.Environment ?? []], bindNow);
            if (stop is null)
                return null;
            pidfd = run.TakePidfd();
        }
        var stopped = new StoppedTracee(thread, pidfd, stop.File.ProgramPath, stop, log, lazyBind: !bindNow);
        try
        {
            StopChecks.Verify(stop.Pid, log);
            StopChecks.VerifyKernelState(stopped.Kernel, stop.Rseq);
            return stopped;
        }
        catch
        {
            stopped.Dispose();
            throw;
        }
    }

    /// <summary>Waits for the run with the timeout; turns the ways it can fail into RefusalException.</summary>
    static StopState? AwaitStop(TracerThread thread, PtraceRun run, TimeSpan timeout,
        IReadOnlyList<string> environment, bool bindNow)
    {
        var work = thread.Post(() => run.RunToStop(environment));
        bool finished;
        try { finished = work.Wait(timeout); }
        catch (AggregateException) { finished = true; }
        if (!finished)
        {
            if (!KillUntilDone(work, run.KillFromWatchdog))
                throw new RefusalException($"ld.so did not finish within {timeout.TotalSeconds:0.#} s, and the program would not die");
            if (work.IsCompletedSuccessfully)   // it reached the stop just as the kill came: reap it
                thread.Invoke(() => Tracee.KillAndReap(work.Result.Pid));
            throw new RefusalException($"ld.so did not finish within {timeout.TotalSeconds:0.#} s");
        }
        try { return work.GetAwaiter().GetResult(); }
        catch (ProgramEndedException) when (bindNow) { return null; }
        catch (ProgramEndedException e)
        {
            throw new RefusalException($"ended before ld.so finished ({e.Message}){FirstLine(run.Log.Output)}");
        }
        catch (ErrnoException e) { throw new RefusalException(e.Message); }
        catch (IOException e) { throw new RefusalException(e.Message); }
    }

    /// <summary>
    /// Sends SIGKILL (again while <paramref name="kill"/> finds no process yet) until the tracer
    /// thread's <paramref name="work"/> completes; false if it has not within <see cref="KillGrace"/>.
    /// </summary>
    internal static bool KillUntilDone(Task work, Func<bool> kill)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        bool sent = false;
        while (clock.Elapsed < KillGrace)
        {
            if (!sent)
                sent = kill();
            try
            {
                if (work.Wait(TimeSpan.FromMilliseconds(50)))
                    return true;
            }
            catch (AggregateException) { return true; }
        }
        return false;
    }

    static string FirstLine(string output)
    {
        string line = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
        return line.Length == 0 ? "" : ": " + line;
    }

    /// <summary>
    /// The environment for the capture run. LD_AUDIT would load the resident hook itself;
    /// RESIDENT_* steer resident, not the program; LD_BIND_NOW=1 binds every PLT slot so
    /// no lazy resolution is left to do after a restore.
    /// </summary>
    internal static List<string> CaptureEnvironment(IReadOnlyDictionary<string, string> environment, bool bindNow)
    {
        var env = environment
            .Where(kv => kv.Key is not ("LD_AUDIT" or "LD_BIND_NOW") && !kv.Key.StartsWith("RESIDENT_", StringComparison.Ordinal))
            .Select(kv => $"{kv.Key}={kv.Value}")
            .ToList();
        if (bindNow)
            env.Add("LD_BIND_NOW=1");
        return env;
    }
}
