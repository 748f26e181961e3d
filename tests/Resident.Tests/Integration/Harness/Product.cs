using System.Runtime.CompilerServices;

namespace Resident.Tests.Integration.Harness;

/// <summary>
/// Where the product under test lives: dist/resident (the CLI) and dist/libresident.so (the
/// LD_AUDIT hook) at the repository root, built by the test command before `dotnet test` runs.
/// The root is found from this source file because the tests build outside the repository.
/// </summary>
public static class Product
{
    public static string RepoRoot { get; } = FindRoot();
    public static string Cli => Path.Combine(RepoRoot, "dist", "resident");
    public static string Hook => Path.Combine(RepoRoot, "dist", "libresident.so");
    public static string FixtureSources => Path.Combine(RepoRoot, "tests", "fixtures");

    /// <summary>Fails the calling test with a message that says how to build what is missing.</summary>
    public static void RequireBuilt() => Require(Cli, Hook);

    public static void RequireHook() => Require(Hook);

    static void Require(params string[] files)
    {
        foreach (var f in files)
            if (!File.Exists(f))
                throw new InvalidOperationException(
                    $"{f} does not exist: build the product first (./setup.sh --no-demo, or make -C native and " +
                    "dotnet publish src/Resident.Cli -c Release -r linux-x64 -o dist)");
    }

    static string FindRoot([CallerFilePath] string here = "")
    {
        for (var d = Path.GetDirectoryName(here); d != null; d = Path.GetDirectoryName(d))
            if (File.Exists(Path.Combine(d, "native", "image.h")) && Directory.Exists(Path.Combine(d, "tests", "fixtures")))
                return d;
        throw new InvalidOperationException("repository root not found above " + here);
    }
}
