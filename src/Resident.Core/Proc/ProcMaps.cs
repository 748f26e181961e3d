using System.Globalization;

namespace Resident.Proc;

/// <summary>One line of /proc/PID/maps.</summary>
/// <param name="Name">pathname column: a file path (maybe ending in " (deleted)"), "[stack]", "[vdso]", ... or "".</param>
public sealed record MapsEntry(ulong Start, ulong End, string Perms, ulong Offset,
    uint DevMajor, uint DevMinor, ulong Inode, string Name)
{
    public const uint ProtRead = 1, ProtWrite = 2, ProtExec = 4;

    /// <summary>PROT_* bits from the rwx columns.</summary>
    public uint Prot => (Perms[0] == 'r' ? ProtRead : 0) | (Perms[1] == 'w' ? ProtWrite : 0) | (Perms[2] == 'x' ? ProtExec : 0);

    public bool Shared => Perms[3] == 's';

    /// <summary>Backed by a file (a path with an inode), as opposed to anonymous or a [special] mapping.</summary>
    public bool IsFile => Inode != 0 && Name.StartsWith('/');

    /// <summary>Kernel-generated mappings: [stack], [vdso], [heap], ...</summary>
    public bool IsSpecial => Name.StartsWith('[');

    /// <summary>st_dev as stat(2) reports it for a file on this device (glibc's makedev encoding).</summary>
    public ulong Dev => MakeDev(DevMajor, DevMinor);

    public ulong Length => End - Start;

    public static ulong MakeDev(ulong major, ulong minor) =>
        ((major & 0xfffff000UL) << 32) | ((major & 0xfffUL) << 8) | ((minor & 0xffffff00UL) << 12) | (minor & 0xffUL);
}

/// <summary>Parser for /proc/PID/maps.</summary>
public static class ProcMaps
{
    public static IReadOnlyList<MapsEntry> Read(int pid) => Parse(File.ReadAllText($"/proc/{pid}/maps"));

    /// <summary>Parses the whole text; throws FormatException naming the bad line.</summary>
    public static IReadOnlyList<MapsEntry> Parse(string text)
    {
        var result = new List<MapsEntry>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            result.Add(ParseLine(line));
        return result;
    }

    // "start-end perms offset major:minor inode   name": the name is everything after the
    // padding that follows the inode, so paths containing spaces survive.
    public static MapsEntry ParseLine(string line)
    {
        try
        {
            int pos = 0;
            string range = NextField(line, ref pos);
            string perms = NextField(line, ref pos);
            string offset = NextField(line, ref pos);
            string dev = NextField(line, ref pos);
            string inode = NextField(line, ref pos);
            while (pos < line.Length && line[pos] == ' ') pos++;
            int dash = range.IndexOf('-');
            int colon = dev.IndexOf(':');
            if (dash < 0 || colon < 0 || perms.Length != 4)
                throw new FormatException();
            return new MapsEntry(Hex(range[..dash]), Hex(range[(dash + 1)..]), perms, Hex(offset),
                (uint)Hex(dev[..colon]), (uint)Hex(dev[(colon + 1)..]),
                ulong.Parse(inode, CultureInfo.InvariantCulture), line[pos..]);
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw new FormatException($"bad /proc/PID/maps line: {line}");
        }
    }

    static string NextField(string line, ref int pos)
    {
        while (pos < line.Length && line[pos] == ' ') pos++;
        int start = pos;
        while (pos < line.Length && line[pos] != ' ') pos++;
        if (start == pos) throw new FormatException();
        return line[start..pos];
    }

    static ulong Hex(string s) => ulong.Parse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
}
