using System.Runtime.CompilerServices;

namespace Resident.Tests.Image;

/// <summary>Repository paths, found from this source file (tests build outside the repo).</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRoot();

    public static string ImageHeader => Path.Combine(RepoRoot, "native", "image.h");

    static string FindRoot([CallerFilePath] string here = "")
    {
        for (var d = Path.GetDirectoryName(here); d != null; d = Path.GetDirectoryName(d))
            if (File.Exists(Path.Combine(d, "native", "image.h")))
                return d;
        throw new InvalidOperationException("repository root not found above " + here);
    }
}
