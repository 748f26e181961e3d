namespace Resident.Bench;

/// <summary>How one row of the table starts the program: executable, argv and the whole environment.</summary>
public sealed record BenchVariant(string Name, string Path, IReadOnlyList<string> Argv, IReadOnlyList<string> Env);

/// <summary>
/// What to measure. <paramref name="ProgramPath"/> is what posix_spawn executes, Argv[0] what the
/// program sees; the static program gets the same arguments; stdin of every run is <paramref name="StdinPath"/>.
/// </summary>
/// <param name="InitRegistryDir">a second registry, holding the program captured with --level init, for a
/// "resident init" row; null for none.</param>
public sealed record BenchTarget(string ProgramPath, IReadOnlyList<string> Argv, string? StaticPath,
    string HookPath, string RegistryDir, string StdinPath, string? InitRegistryDir = null);

/// <summary>The rows of the seed's table, as users run each of them.</summary>
public static class BenchPlan
{
    public const string Normal = "normal";
    public const string BindNow = "LD_BIND_NOW=1";
    public const string Resident = "resident";
    public const string Static = "static";
    public const string ResidentInit = "resident init";

    /// <summary>
    /// normal, LD_BIND_NOW=1, resident (LD_AUDIT = the hook, RESIDENT_DIR = the temporary registry,
    /// exactly how shell-init runs a program), resident init (the same with the registry of the
    /// init-level capture) and static when given. All share the caller's
    /// environment minus the variables that steer ld.so's binding or resident (a stray LD_AUDIT
    /// or LD_BIND_NOW would blur the difference between the rows).
    /// </summary>
    public static IReadOnlyList<BenchVariant> Variants(BenchTarget t, IReadOnlyDictionary<string, string> environment)
    {
        var clean = environment
            .Where(kv => kv.Key is not ("LD_AUDIT" or "LD_BIND_NOW") && !kv.Key.StartsWith("RESIDENT_", StringComparison.Ordinal))
            .Select(kv => $"{kv.Key}={kv.Value}")
            .ToList();
        var env = clean.Append("RESIDENT_DIR=" + t.RegistryDir).ToList();
        var variants = new List<BenchVariant>
        {
            new(Normal, t.ProgramPath, t.Argv, env),
            new(BindNow, t.ProgramPath, t.Argv, [.. env, "LD_BIND_NOW=1"]),
            new(Resident, t.ProgramPath, t.Argv, [.. env, "LD_AUDIT=" + t.HookPath]),
        };
        if (t.InitRegistryDir is { } init)
            variants.Add(new(ResidentInit, t.ProgramPath, t.Argv, [.. clean, "RESIDENT_DIR=" + init, "LD_AUDIT=" + t.HookPath]));
        if (t.StaticPath is { } s)
            variants.Add(new(Static, s, [s, .. t.Argv.Skip(1)], env));
        return variants;
    }
}

/// <summary>The benchmark cannot give meaningful numbers; the message says why in one line.</summary>
public sealed class BenchException(string message) : Exception(message);
