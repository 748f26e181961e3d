using System.Diagnostics;
using System.Text;

namespace Resident.Tests.Integration.Harness;

/// <summary>One command to run: everything explicit, nothing inherited from the test host.</summary>
public sealed record RunSpec(string Program, IReadOnlyList<string> Args)
{
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();
    public string? WorkingDirectory { get; init; }
    /// <summary>Bytes written to stdin, which is then closed; null: stdin is an empty pipe.</summary>
    public byte[]? Stdin { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    public override string ToString() => string.Join(' ', new[] { Program }.Concat(Args.Select(Quote)));

    static string Quote(string a) => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";
}

/// <summary>How a run ended. ExitCode is 128+N for death by signal N (as .NET and shells report it).</summary>
public sealed record RunResult(RunSpec Spec, byte[] Stdout, byte[] Stderr, int ExitCode)
{
    public string StdoutText => Encoding.UTF8.GetString(Stdout);
    public string StderrText => Encoding.UTF8.GetString(Stderr);

    public override string ToString() =>
        $"$ {Spec}\nexit {ExitCode}\n--- stdout ---\n{Truncate(StdoutText)}\n--- stderr ---\n{Truncate(StderrText)}";

    static string Truncate(string s) => s.Length <= 4000 ? s : s[..4000] + $"\n... ({s.Length} chars)";
}

public static class ProcessRunner
{
    /// <summary>Runs SPEC to completion; a run that outlives its timeout is killed and fails the test.</summary>
    public static RunResult Run(RunSpec spec)
    {
        var psi = new ProcessStartInfo(spec.Program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = spec.WorkingDirectory ?? Path.GetTempPath(),
        };
        foreach (var a in spec.Args)
            psi.ArgumentList.Add(a);
        psi.Environment.Clear();
        foreach (var (k, v) in spec.Env)
            psi.Environment[k] = v;

        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + spec);
        var stdout = CopyAsync(p.StandardOutput.BaseStream);
        var stderr = CopyAsync(p.StandardError.BaseStream);
        WriteStdin(p, spec.Stdin);
        if (!p.WaitForExit(spec.Timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            throw new TimeoutException($"timed out after {spec.Timeout.TotalSeconds} s: {spec}");
        }
        p.WaitForExit(); // drains the output readers
        return new RunResult(spec, stdout.Result, stderr.Result, p.ExitCode);
    }

    static void WriteStdin(Process p, byte[]? bytes)
    {
        try
        {
            if (bytes != null)
                p.StandardInput.BaseStream.Write(bytes);
            p.StandardInput.Close();
        }
        catch (IOException)
        {
            // the program exited without reading all of its input: its exit status tells the rest
        }
    }

    static async Task<byte[]> CopyAsync(Stream s)
    {
        var ms = new MemoryStream();
        await s.CopyToAsync(ms);
        return ms.ToArray();
    }
}
