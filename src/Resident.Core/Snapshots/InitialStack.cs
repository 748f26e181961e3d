using System.Buffers.Binary;
using System.Text;
using Resident.HookContract;
using Resident.Proc;

namespace Resident.Snapshots;

/// <summary>A byte range [Start, End) in the capture's address space.</summary>
public readonly record struct AddressRange(ulong Start, ulong End)
{
    public bool Contains(ulong a) => a >= Start && a < End;
}

/// <summary>
/// The process's initial stack as the kernel built it, seen from rsp at the stop point:
/// argc, argv[] + NULL, envp[] + NULL, auxv pairs up to AT_NULL, and the strings and
/// AT_RANDOM bytes they point to. Every range here is a possible target of a word the
/// snapshot holds, classified by <see cref="PointerClassifier"/>.
/// </summary>
public sealed class InitialStack
{
    /// <summary>Auxv entries whose value points into the stack, and how many bytes it covers there.</summary>
    static readonly ulong[] StringAuxvTypes = [Auxv.AT_PLATFORM, Auxv.AT_BASE_PLATFORM, Auxv.AT_EXECFN];
    const int RandomBytes = 16;

    public required ulong ArgcAddr { get; init; }
    public required AddressRange ArgvArray { get; init; }   // includes the NULL slot
    public required AddressRange EnvpArray { get; init; }   // includes the NULL slot
    public required AddressRange AuxvArray { get; init; }   // includes the AT_NULL pair
    public required IReadOnlyList<AddressRange> ArgStrings { get; init; }  // each includes its NUL
    public required IReadOnlyList<(string Name, AddressRange Range)> EnvStrings { get; init; }
    public required IReadOnlyList<(ulong Type, AddressRange Range)> AuxvValues { get; init; }
    public required Auxv Auxv { get; init; }

    /// <summary>
    /// Parses the stack from <paramref name="mem"/>, the bytes at [rsp, rsp + mem.Length)
    /// (read up to the end of the [stack] VMA, so every string is inside it).
    /// Throws RefusalException if the layout is not the kernel's.
    /// </summary>
    public static InitialStack Parse(ulong rsp, ReadOnlySpan<byte> mem)
    {
        var reader = new StackReader(rsp, mem);
        ulong argc = reader.Word(rsp);
        if (argc > 1 << 20)
            throw new RefusalException($"implausible argc {argc} at the stop point");
        ulong argv = rsp + 8;
        var args = new List<AddressRange>();
        for (ulong i = 0; i < argc; i++)
            args.Add(reader.CString(reader.Word(argv + 8 * i)));
        if (reader.Word(argv + 8 * argc) != 0)
            throw new RefusalException("argv is not NULL-terminated at the stop point");

        ulong envp = argv + 8 * (argc + 1);
        var env = new List<(string, AddressRange)>();
        ulong slot = envp;
        for (ulong p; (p = reader.Word(slot)) != 0; slot += 8)
        {
            // ld.so points the GLIBC_TUNABLES slot at its own copy (tunables_strdup): such
            // a string is not in the stack, so nothing can point into it there.
            if (!reader.Inside(p, 1))
                continue;
            var range = reader.CString(p);
            env.Add((EnvRule.EnvName(reader.Text(range)), range));
        }

        ulong auxvStart = slot + 8;
        var pairs = new List<(ulong, ulong)>();
        ulong a = auxvStart;
        for (ulong type; (type = reader.Word(a)) != Auxv.AT_NULL; a += 16)
            pairs.Add((type, reader.Word(a + 8)));
        var auxv = new Auxv(pairs);

        return new InitialStack
        {
            ArgcAddr = rsp,
            ArgvArray = new(argv, envp),
            EnvpArray = new(envp, slot + 8),
            AuxvArray = new(auxvStart, a + 16),
            ArgStrings = args,
            EnvStrings = env,
            AuxvValues = AuxvTargets(auxv, reader),
            Auxv = auxv,
        };
    }

    static List<(ulong, AddressRange)> AuxvTargets(Auxv auxv, StackReader reader)
    {
        var result = new List<(ulong, AddressRange)>();
        foreach (ulong type in StringAuxvTypes)
            if (auxv.Find(type) is ulong p && p != 0)
                result.Add((type, reader.CString(p)));
        if (auxv.Find(Auxv.AT_RANDOM) is ulong r && r != 0)
        {
            reader.Check(r, RandomBytes);
            result.Add((Auxv.AT_RANDOM, new AddressRange(r, r + RandomBytes)));
        }
        return result;
    }


    ref struct StackReader(ulong baseAddr, ReadOnlySpan<byte> mem)
    {
        readonly ulong baseAddr = baseAddr;
        readonly ReadOnlySpan<byte> mem = mem;

        public readonly bool Inside(ulong addr, int length) =>
            addr >= baseAddr && addr - baseAddr + (ulong)length <= (ulong)mem.Length;

        public readonly void Check(ulong addr, int length)
        {
            if (!Inside(addr, length))
                throw new RefusalException($"initial stack: 0x{addr:x} is outside the argument area");
        }

        public readonly ulong Word(ulong addr)
        {
            Check(addr, 8);
            return BinaryPrimitives.ReadUInt64LittleEndian(mem[(int)(addr - baseAddr)..]);
        }

        /// <summary>The string at addr, including its NUL.</summary>
        public readonly AddressRange CString(ulong addr)
        {
            Check(addr, 1);
            int start = (int)(addr - baseAddr);
            int n = mem[start..].IndexOf((byte)0);
            if (n < 0)
                throw new RefusalException($"initial stack: string at 0x{addr:x} is not terminated");
            return new AddressRange(addr, addr + (ulong)n + 1);
        }

        public readonly string Text(AddressRange r) =>
            Encoding.UTF8.GetString(mem.Slice((int)(r.Start - baseAddr), (int)(r.End - r.Start - 1)));
    }
}
