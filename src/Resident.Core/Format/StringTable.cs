using System.Text;

namespace Resident.Format;

/// <summary>The image's string table: NUL-terminated UTF-8 strings, each stored once; offset 0 is "".</summary>
public sealed class StringTable
{
    readonly Dictionary<string, uint> _offsets = new(StringComparer.Ordinal);
    readonly MemoryStream _bytes = new();

    public StringTable() => Add("");

    public uint Add(string s)
    {
        if (_offsets.TryGetValue(s, out uint offset))
            return offset;
        if (s.Contains('\0'))
            throw new ArgumentException("string contains NUL: " + s.Replace('\0', '@'));
        offset = checked((uint)_bytes.Length);
        _bytes.Write(Encoding.UTF8.GetBytes(s));
        _bytes.WriteByte(0);
        _offsets[s] = offset;
        return offset;
    }

    public byte[] ToArray() => _bytes.ToArray();

    /// <summary>The string at <paramref name="offset"/> of a table; InvalidDataException when out of bounds or unterminated.</summary>
    public static string Get(ReadOnlySpan<byte> table, uint offset)
    {
        if (offset >= table.Length)
            throw new InvalidDataException($"string offset {offset} beyond the string table ({table.Length} bytes)");
        int n = table[(int)offset..].IndexOf((byte)0);
        if (n < 0)
            throw new InvalidDataException($"string at offset {offset} is not NUL-terminated");
        return Encoding.UTF8.GetString(table.Slice((int)offset, n));
    }
}
