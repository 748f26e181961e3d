using System.Text;
using System.Text.RegularExpressions;

namespace Resident.Config;

/// <summary>
/// resident.conf, after DragonFly's resident.conf(5): one program per line — a path, a name
/// searched on PATH, or an absolute glob (*, ?, [...] within one path component; * does not
/// match a leading dot); "~/" stands for $HOME; '#' starts a comment at the start of a line or
/// after a blank. `resident sync` makes the registry match the file. A line may end in an option
/// after a blank: <c>init</c> registers the program at the init level (`resident add --level init`),
/// <c>link</c> (the default) at the link level; <c>variants K</c> in K address layouts
/// (`resident add --variants K`). Options may come in any order.
/// </summary>
public static class ResidentConf
{
    /// <summary>The file `resident sync --system` reads.</summary>
    public const string SystemPath = "/etc/resident.conf";

    /// <summary>$XDG_CONFIG_HOME/resident/resident.conf, else $HOME/.config/resident/resident.conf (absolute only).</summary>
    public static string? UserPath(Func<string, string?> getenv)
    {
        string? xdg = getenv("XDG_CONFIG_HOME");
        if (xdg is ['/', ..]) return xdg + "/resident/resident.conf";
        string? home = getenv("HOME");
        return home is ['/', ..] ? home + "/.config/resident/resident.conf" : null;
    }

    /// <param name="Number">1-based line number, for messages.</param>
    /// <param name="Init">the line ends in " init": register at the init level.</param>
    /// <param name="Variants">" variants K": K layout variants (1: one layout).</param>
    public sealed record Entry(int Number, string Pattern, bool Init = false, uint Variants = 1)
    {
        public bool IsGlob => HasWildcard(Pattern);
    }

    /// <summary>The entries of a resident.conf text, comments and blank lines dropped.</summary>
    public static IReadOnlyList<Entry> Parse(string text, string? home)
    {
        var entries = new List<Entry>();
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = StripComment(lines[i]).Trim();
            if (line.Length == 0)
                continue;
            bool init = false;
            uint variants = 1;
            for (int blank; (blank = line.LastIndexOfAny([' ', '\t'])) > 0;)
            {
                string last = line[(blank + 1)..], before = line[..blank].TrimEnd();
                int second = before.LastIndexOfAny([' ', '\t']);
                if (last is "init" or "link")
                    init = last == "init";
                else if (second > 0 && before[(second + 1)..] == "variants" && uint.TryParse(last, out uint k) && k >= 1 && k <= 256)
                {
                    variants = k;
                    before = before[..second].TrimEnd();
                }
                else
                    break;
                line = before;
            }
            if (line.StartsWith("~/", StringComparison.Ordinal) && home is ['/', ..])
                line = home.TrimEnd('/') + line[1..];
            entries.Add(new Entry(i + 1, line, init, variants));
        }
        return entries;
    }

    static string StripComment(string line)
    {
        for (int i = 0; i < line.Length; i++)
            if (line[i] == '#' && (i == 0 || char.IsWhiteSpace(line[i - 1])))
                return line[..i];
        return line;
    }

    /// <summary>
    /// The executable regular files an absolute glob names, sorted; [] when none. A pattern
    /// without wildcards is returned as is (the caller reports it if it does not exist).
    /// </summary>
    public static IReadOnlyList<string> Expand(string pattern)
    {
        if (!HasWildcard(pattern))
            return [pattern];
        if (!pattern.StartsWith('/'))
            throw new ArgumentException($"a glob must be an absolute path: {pattern}");
        IEnumerable<string> paths = ["/"];
        foreach (string part in pattern.Split('/', StringSplitOptions.RemoveEmptyEntries))
            paths = HasWildcard(part) ? paths.SelectMany(dir => Matches(dir, part)) : paths.Select(dir => Path.Join(dir, part));
        return paths.Where(IsExecutableFile).Order(StringComparer.Ordinal).ToList();
    }

    static bool HasWildcard(string pattern) => pattern.IndexOfAny(['*', '?', '[']) >= 0;

    static IEnumerable<string> Matches(string dir, string component)
    {
        if (!Directory.Exists(dir))
            return [];
        var regex = ComponentRegex(component);
        try
        {
            return Directory.EnumerateFileSystemEntries(dir)
                .Where(p => regex.IsMatch(Path.GetFileName(p)))
                .ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>One path component of a glob as an anchored regex, with the shell's rules.</summary>
    internal static Regex ComponentRegex(string component)
    {
        var re = new StringBuilder("^");
        if (component[0] is '*' or '?')
            re.Append("(?!\\.)");   // no match of hidden files, as in the shell
        for (int i = 0; i < component.Length; i++)
        {
            char c = component[i];
            int close = c == '[' ? component.IndexOf(']', i + 2) : -1;
            if (c == '*') re.Append("[^/]*");
            else if (c == '?') re.Append("[^/]");
            else if (close > 0)
            {
                string set = component[(i + 1)..close];
                re.Append('[').Append(set[0] == '!' ? "^" + Regex.Escape(set[1..]) : Regex.Escape(set)).Append(']');
                i = close;
            }
            else re.Append(Regex.Escape(c.ToString()));
        }
        return new Regex(re.Append('$').ToString(), RegexOptions.CultureInvariant);
    }

    static bool IsExecutableFile(string path) =>
        File.Exists(path) && (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
}
