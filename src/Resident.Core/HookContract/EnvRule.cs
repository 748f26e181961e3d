namespace Resident.HookContract;

/// <summary>
/// The environment an image depends on: the variables that change what ld.so or malloc did
/// before the capture point — LD_*, MALLOC_* and GLIBC_TUNABLES, but not LD_AUDIT (the hook
/// itself) nor LD_BIND_NOW (set by the capture). The image keeps them (its env table) and the
/// hook restores only an exec whose tracked variables are exactly those (native/restore.c
/// env_tracked, check_env). EnvRuleTests runs the real hook on the same environments.
/// </summary>
public static class EnvRule
{
    /// <summary>Whether the hook compares this "NAME=value" entry.</summary>
    public static bool Tracked(string entry)
    {
        string name = EnvName(entry);
        return (name.StartsWith("LD_", StringComparison.Ordinal) || name.StartsWith("MALLOC_", StringComparison.Ordinal)
                || name == "GLIBC_TUNABLES")
            && name != "LD_AUDIT" && name != "LD_BIND_NOW";
    }

    /// <summary>The image's env table: the tracked entries of a capture's environment, sorted.</summary>
    public static List<string> Select(IEnumerable<string> environment) =>
        environment.Where(Tracked).Order(StringComparer.Ordinal).ToList();

    /// <summary>The name of a "NAME=value" entry (all of it when there is no '=').</summary>
    public static string EnvName(string entry) => entry.IndexOf('=') is int i and >= 0 ? entry[..i] : entry;
}
