using System.Text.Json;
using Resident.Cli;

namespace Resident.Tests.Cli;

/// <summary>What a verb's Run printed and returned.</summary>
public sealed record CliResult(int Code, string Out, string Err)
{
    public string[] OutLines => Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    public string[] ErrLines => Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() => $"exit {Code}\n--- stdout ---\n{Out}\n--- stderr ---\n{Err}";
}

/// <summary>Calls a verb's Run(settings, stdout, stderr) in this process, as the STYLE asks tests to.</summary>
public static class CliRun
{
    public static CliResult Of(Func<TextWriter, TextWriter, int> run)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = run(o, e);
        return new CliResult(code, o.ToString(), e.ToString());
    }

    /// <summary>`resident list --json` of <paramref name="registryDir"/>, parsed back.</summary>
    public static List<ListItem> ListJson(string registryDir)
    {
        var r = Of((o, e) => ListCommand.Run(new ListSettings(registryDir, Json: true), o, e));
        if (r.Code != 0)
            throw new InvalidOperationException("resident list --json failed:\n" + r);
        return JsonSerializer.Deserialize(r.Out, ResidentJson.Default.ListListItem)!;
    }
}
