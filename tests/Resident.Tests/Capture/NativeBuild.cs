using System.Diagnostics;

namespace Resident.Tests.Capture;

/// <summary>A private temp directory with small programs compiled by gcc for the tracer and ELF tests.</summary>
internal sealed class NativeBuild : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("resident-tracer-").FullName;

    /// <summary>Writes <paramref name="source"/> to NAME.c, runs gcc with <paramref name="flags"/>, returns the output path.</summary>
    public string Compile(string name, string source, string flags = "")
    {
        string src = Path.Combine(Dir, name + ".c"), output = Path.Combine(Dir, name);
        File.WriteAllText(src, source);
        Run("gcc", $"-O1 -o {output} {src} {flags}");
        return output;
    }

    public string Copy(string file, string name)
    {
        string dest = Path.Combine(Dir, name);
        File.Copy(file, dest, overwrite: true);
        return dest;
    }

    /// <summary>Runs a build tool; its stdout (stderr is in the exception when it fails).</summary>
    public static string Run(string program, string arguments)
    {
        var psi = new ProcessStartInfo(program, arguments) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{program} {arguments} failed ({p.ExitCode}): {err}");
        return output.Result;
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
