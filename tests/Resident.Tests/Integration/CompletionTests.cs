using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// contrib/completion: bash, zsh and fish ask resident itself for candidates (System.CommandLine's
/// [suggest:POSITION] directive), each shell run for real with dist/ first on PATH.
/// </summary>
public sealed class CompletionTests
{
    static string Script(string name) => Path.Combine(Product.RepoRoot, "contrib", "completion", name);

    static string[] Complete(string shell, string script)
    {
        Product.RequireBuilt();
        using var s = new ResidentSession();
        var env = new Dictionary<string, string> { ["PATH"] = Path.GetDirectoryName(Product.Cli) + ":/usr/bin:/bin" };
        var r = s.RunNormal(s.Spec(shell, ["-c", script], env));
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    // COMP_* as bash sets them for the line "resident WORD" with the cursor at its end
    static string BashCall(string word) =>
        $"COMP_LINE='resident {word}'; COMP_POINT={9 + word.Length}; COMP_WORDS=(resident '{word}'); COMP_CWORD=1; _resident; " +
        "printf '%s\\n' \"${COMPREPLY[@]}\"";

    [Fact]
    public void Bash_CompletesVerbs()
    {
        var got = Complete("/bin/bash", $"source '{Script("resident.bash")}'; {BashCall("li")}");
        Assert.Equal(["list"], got);
        got = Complete("/bin/bash", $"source '{Script("resident.bash")}'; {BashCall("sh")}");
        Assert.Contains("show", got);
        Assert.Contains("shell-init", got);
    }

    [Fact]
    public void Zsh_CompletesVerbsThroughBashcompinit()
    {
        // bashcompinit runs the bash function under `emulate -L sh`; the test does the same
        var got = Complete("/usr/bin/zsh",
            $"autoload -U compinit && compinit -u; source '{Script("_resident.zsh")}'; f() {{ emulate -L sh; {BashCall("li")}; }}; f");
        Assert.Equal(["list"], got);
    }

    [Fact]
    public void Fish_CompletesVerbsAndShells()
    {
        var got = Complete("/usr/bin/fish", $"source '{Script("resident.fish")}'; complete -C 'resident li'");
        Assert.Contains("list", got);
        got = Complete("/usr/bin/fish", $"source '{Script("resident.fish")}'; complete -C 'resident shell-init '");
        Assert.Contains("bash", got);
        Assert.Contains("zsh", got);
        Assert.Contains("fish", got);
    }
}
