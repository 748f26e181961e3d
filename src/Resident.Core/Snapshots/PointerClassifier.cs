using System.Buffers.Binary;
using Resident.Format;

namespace Resident.Snapshots;

/// <summary>
/// Finds the words of saved memory that point into the capture's initial stack and names
/// each by meaning (argv index, env variable, auxv type, offset), so the restorer can point
/// it at the same thing in the new exec's stack. A word pointing anywhere else in the old
/// stack (dead frames, locals) has no meaning in another exec: the capture is refused.
/// </summary>
public static class PointerClassifier
{
    /// <summary>A page of saved memory to scan: its address, bytes and maps name (for messages).</summary>
    public readonly record struct Chunk(ulong Addr, ReadOnlyMemory<byte> Bytes, string Name);

    /// <summary>
    /// Scans every 8-byte aligned word of <paramref name="chunks"/>; values inside
    /// <paramref name="stackVma"/> become patches. Throws RefusalException on the first
    /// word that points into the stack but not at anything <see cref="Classify"/> knows.
    /// </summary>
    /// <param name="belowArgc">init level: a word pointing below argc (the frames below main, and
    /// the dead frames of the constructors under them) is argc-relative, as it is in a normal
    /// start, where those frames lie at the same distance below this exec's argc.</param>
    public static List<Patch> Scan(IEnumerable<Chunk> chunks, AddressRange stackVma, InitialStack stack, bool belowArgc = false)
    {
        var patches = new List<Patch>();
        foreach (var chunk in chunks)
        {
            var span = chunk.Bytes.Span;
            for (int i = 0; i + 8 <= span.Length; i += 8)
            {
                ulong value = BinaryPrimitives.ReadUInt64LittleEndian(span[i..]);
                if (!stackVma.Contains(value))
                    continue;
                ulong addr = chunk.Addr + (ulong)i;
                var patch = (belowArgc && value < stack.ArgcAddr ? new Patch(addr, ImageFormat.PatchArgc, 0, Delta(value, stack.ArgcAddr)) : null)
                    ?? Classify(addr, value, stack) ?? throw new RefusalException(
                    $"unclassifiable pointer into the stack at 0x{addr:x} (in {(chunk.Name.Length == 0 ? "anonymous memory" : chunk.Name)})");
                patches.Add(patch);
            }
        }
        return patches;
    }

    /// <summary>The meaning of <paramref name="value"/> stored at <paramref name="addr"/>, or null.</summary>
    public static Patch? Classify(ulong addr, ulong value, InitialStack s)
    {
        if (value >= s.ArgcAddr && value < s.ArgcAddr + 8)
            return new Patch(addr, ImageFormat.PatchArgc, 0, Delta(value, s.ArgcAddr));
        if (s.ArgvArray.Contains(value))
            return new Patch(addr, ImageFormat.PatchArgv, 0, Delta(value, s.ArgvArray.Start));
        if (s.EnvpArray.Contains(value))
            return new Patch(addr, ImageFormat.PatchEnvp, 0, Delta(value, s.EnvpArray.Start));
        if (s.AuxvArray.Contains(value))
            return new Patch(addr, ImageFormat.PatchAuxv, 0, Delta(value, s.AuxvArray.Start));
        for (int i = 0; i < s.ArgStrings.Count; i++)
            if (s.ArgStrings[i].Contains(value))
                return new Patch(addr, ImageFormat.PatchArgString, (uint)i, Delta(value, s.ArgStrings[i].Start));
        return ClassifyEnvString(addr, value, s) ?? ClassifyAuxvValue(addr, value, s);
    }

    // The restorer finds the variable by name, so only the first variable of a name is
    // addressable; a pointer into a later duplicate stays unclassified.
    static Patch? ClassifyEnvString(ulong addr, ulong value, InitialStack s)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, range) in s.EnvStrings)
        {
            bool first = seen.Add(name);
            if (range.Contains(value))
                return first ? new Patch(addr, ImageFormat.PatchEnvString, 0, Delta(value, range.Start), name) : null;
        }
        return null;
    }

    static Patch? ClassifyAuxvValue(ulong addr, ulong value, InitialStack s)
    {
        foreach (var (type, range) in s.AuxvValues)
            if (range.Contains(value))
                return new Patch(addr, ImageFormat.PatchAuxvValue, (uint)type, Delta(value, range.Start));
        return null;
    }

    static long Delta(ulong value, ulong b) => (long)(value - b);
}
