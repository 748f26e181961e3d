using System.Runtime.InteropServices;

namespace Resident.Activation;

/// <summary>
/// How the hook gets into a process: LD_AUDIT names libresident.so by absolute path. ld.so then
/// loads it for every dynamically linked exec below that environment (children included).
/// </summary>
public static class HookActivation
{
    /// <summary>LD_AUDIT value with the hook first and not twice; other audit modules are kept.</summary>
    public static string ComposeLdAudit(string hookPath, string? current)
    {
        var others = (current ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Where(p => p != hookPath);
        return string.Join(':', others.Prepend(hookPath));
    }

    /// <summary>
    /// Replaces this process with <paramref name="program"/> (searched on PATH when it has no '/'),
    /// its environment plus the hook in LD_AUDIT. Returns only on failure, with the errno text.
    /// </summary>
    public static string Exec(string hookPath, string program, IReadOnlyList<string> args)
    {
        var env = new List<string>();
        string? ldAudit = null;
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            if ((string)e.Key == "LD_AUDIT") ldAudit = (string?)e.Value;
            else env.Add($"{e.Key}={e.Value}");
        }
        env.Add("LD_AUDIT=" + ComposeLdAudit(hookPath, ldAudit));
        string?[] argv = [program, .. args, null];
        string?[] envp = [.. env, null];
        Interop.Execvpe(program, argv, envp);
        return Marshal.GetLastPInvokeErrorMessage();
    }
}
