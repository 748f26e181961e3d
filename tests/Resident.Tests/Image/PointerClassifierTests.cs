using System.Buffers.Binary;
using System.Text;
using Xunit;
using Resident.Format;
using Resident.Proc;
using Resident.Snapshots;

namespace Resident.Tests.Image;

/// <summary>A kernel-style initial stack built in a byte array, at a made-up address.</summary>
internal sealed class SyntheticStack
{
    public const ulong Rsp = 0x7ffd_1234_5000;
    public const ulong VmaStart = 0x7ffd_1230_0000;
    public readonly byte[] Block = new byte[8192];
    public readonly ulong[] ArgPtrs, EnvPtrs;
    public readonly ulong RandomAddr, PlatformAddr, ExecfnAddr, AuxvAddr;
    public ulong VmaEnd => Rsp + (ulong)Block.Length;

    public SyntheticStack(string[] args, string[] env)
    {
        int words = 1 + args.Length + 1 + env.Length + 1 + 2 * 5;
        ulong next = Rsp + (ulong)words * 8;
        RandomAddr = next; next += 16;
        PlatformAddr = Put(ref next, "x86_64");
        ArgPtrs = args.Select(a => Put(ref next, a)).ToArray();
        EnvPtrs = env.Select(e => Put(ref next, e)).ToArray();
        ExecfnAddr = Put(ref next, "/usr/bin/prog");

        ulong w = Rsp;
        Word(ref w, (ulong)args.Length);
        foreach (var p in ArgPtrs) Word(ref w, p);
        Word(ref w, 0);
        foreach (var p in EnvPtrs) Word(ref w, p);
        Word(ref w, 0);
        AuxvAddr = w;
        foreach (var (t, v) in new[] { (Auxv.AT_PHDR, 0x400040UL), (Auxv.AT_RANDOM, RandomAddr),
                     (Auxv.AT_PLATFORM, PlatformAddr), (Auxv.AT_EXECFN, ExecfnAddr), (Auxv.AT_NULL, 0UL) })
        {
            Word(ref w, t);
            Word(ref w, v);
        }
    }

    public InitialStack Parse() => InitialStack.Parse(Rsp, Block);

    public AddressRange Vma => new(VmaStart, VmaEnd);

    ulong Put(ref ulong at, string s)
    {
        ulong start = at;
        var bytes = Encoding.UTF8.GetBytes(s + "\0");
        bytes.CopyTo(Block, (int)(at - Rsp));
        at += (ulong)bytes.Length;
        return start;
    }

    void Word(ref ulong at, ulong v)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(Block.AsSpan((int)(at - Rsp)), v);
        at += 8;
    }
}

public class InitialStackTests
{
    [Fact]
    public void FindsEveryPartOfTheKernelLayout()
    {
        var st = new SyntheticStack(["prog", "-x"], ["HOME=/root", "LD_LIBRARY_PATH=/opt"]);
        var s = st.Parse();
        Assert.Equal(SyntheticStack.Rsp, s.ArgcAddr);
        Assert.Equal(new AddressRange(SyntheticStack.Rsp + 8, SyntheticStack.Rsp + 32), s.ArgvArray);
        Assert.Equal(new AddressRange(SyntheticStack.Rsp + 32, SyntheticStack.Rsp + 56), s.EnvpArray);
        Assert.Equal(new AddressRange(st.AuxvAddr, st.AuxvAddr + 80), s.AuxvArray);
        Assert.Equal(new AddressRange(st.ArgPtrs[1], st.ArgPtrs[1] + 3), s.ArgStrings[1]);
        Assert.Equal(["HOME", "LD_LIBRARY_PATH"], s.EnvStrings.Select(e => e.Name));
        Assert.Contains((Auxv.AT_RANDOM, new AddressRange(st.RandomAddr, st.RandomAddr + 16)), s.AuxvValues);
        Assert.Contains((Auxv.AT_PLATFORM, new AddressRange(st.PlatformAddr, st.PlatformAddr + 7)), s.AuxvValues);
        Assert.Contains((Auxv.AT_EXECFN, new AddressRange(st.ExecfnAddr, st.ExecfnAddr + 14)), s.AuxvValues);
        Assert.Equal(0x400040UL, s.Auxv.Get(Auxv.AT_PHDR));
    }

    [Fact]
    public void EnvSlotsRepointedByLdsoAreSkipped()
    {
        // ld.so replaces the GLIBC_TUNABLES slot with a pointer to its own copy, outside the stack.
        var st = new SyntheticStack(["prog"], ["A=1", "GLIBC_TUNABLES=x", "B=2"]);
        BinaryPrimitives.WriteUInt64LittleEndian(st.Block.AsSpan(8 * 4), 0x7f00_0000_1000); // envp[1]
        var s = st.Parse();
        Assert.Equal(["A", "B"], s.EnvStrings.Select(e => e.Name));
        Assert.Equal(new AddressRange(SyntheticStack.Rsp + 24, SyntheticStack.Rsp + 56), s.EnvpArray);
    }

    [Fact]
    public void RefusesPointersOutsideTheBlock()
    {
        var st = new SyntheticStack(["prog"], []);
        BinaryPrimitives.WriteUInt64LittleEndian(st.Block.AsSpan(8), 0x1000); // argv[0] → elsewhere
        var e = Assert.Throws<RefusalException>(() => st.Parse());
        Assert.Contains("outside the argument area", e.Message);
    }
}

public class PointerClassifierTests
{
    readonly SyntheticStack _st = new(["prog", "arg1"], ["A=1", "LD_LIBRARY_PATH=/opt", "A=2"]);

    Patch? Classify(ulong value) => PointerClassifier.Classify(0x1000, value, _st.Parse());

    [Fact]
    public void ArraysAreClassifiedWithOffsets()
    {
        Assert.Equal(new Patch(0x1000, ImageFormat.PatchArgc, 0, 0), Classify(SyntheticStack.Rsp));
        Assert.Equal(new Patch(0x1000, ImageFormat.PatchArgv, 0, 0), Classify(SyntheticStack.Rsp + 8));
        Assert.Equal(new Patch(0x1000, ImageFormat.PatchArgv, 0, 8), Classify(SyntheticStack.Rsp + 16));
        Assert.Equal(new Patch(0x1000, ImageFormat.PatchEnvp, 0, 0), Classify(SyntheticStack.Rsp + 32));
        Assert.Equal(new Patch(0x1000, ImageFormat.PatchAuxv, 0, 16), Classify(_st.AuxvAddr + 16));
    }

    [Fact]
    public void StringsAreClassifiedByMeaning()
    {
        Assert.Equal(new Patch(0x1000, ImageFormat.PatchArgString, 1, 2), Classify(_st.ArgPtrs[1] + 2));
        Assert.Equal(new Patch(0x1000, ImageFormat.PatchEnvString, 0, 16, "LD_LIBRARY_PATH"), Classify(_st.EnvPtrs[1] + 16));
        Assert.Equal(new Patch(0x1000, ImageFormat.PatchEnvString, 0, 0, "A"), Classify(_st.EnvPtrs[0]));
        Assert.Equal(new Patch(0x1000, ImageFormat.PatchAuxvValue, (uint)Auxv.AT_PLATFORM, 0), Classify(_st.PlatformAddr));
        Assert.Equal(new Patch(0x1000, ImageFormat.PatchAuxvValue, (uint)Auxv.AT_RANDOM, 15), Classify(_st.RandomAddr + 15));
        Assert.Equal(new Patch(0x1000, ImageFormat.PatchAuxvValue, (uint)Auxv.AT_EXECFN, 13), Classify(_st.ExecfnAddr + 13));
    }

    [Fact]
    public void DeadFramesAndDuplicateNamesAreNotClassified()
    {
        Assert.Null(Classify(SyntheticStack.Rsp - 8));          // below rsp: a dead frame
        Assert.Null(Classify(_st.EnvPtrs[2]));                   // second "A": the hook finds only the first
        Assert.Null(Classify(_st.RandomAddr + 16 + 7 + 100000)); // far above: not in any range
    }

    [Fact]
    public void ScanPatchesEveryAlignedWordIntoTheStack()
    {
        var page = new byte[4096];
        BinaryPrimitives.WriteUInt64LittleEndian(page.AsSpan(0x10), SyntheticStack.Rsp);
        BinaryPrimitives.WriteUInt64LittleEndian(page.AsSpan(0x18), 0x7f00_0000_1000);  // not into the stack
        BinaryPrimitives.WriteUInt64LittleEndian(page.AsSpan(0x20), _st.PlatformAddr);
        BinaryPrimitives.WriteUInt64LittleEndian(page.AsSpan(0x31), SyntheticStack.Rsp); // unaligned: ignored
        var patches = PointerClassifier.Scan([new(0x5000, page, "ld.so")], _st.Vma, _st.Parse());
        Assert.Equal([0x5010UL, 0x5020UL], patches.Select(p => p.Addr));
        Assert.Equal([ImageFormat.PatchArgc, ImageFormat.PatchAuxvValue], patches.Select(p => p.Kind));
    }

    [Fact]
    public void ScanRefusesAnUnclassifiablePointer()
    {
        var page = new byte[4096];
        BinaryPrimitives.WriteUInt64LittleEndian(page.AsSpan(0x40), SyntheticStack.VmaStart + 0x100);
        var e = Assert.Throws<RefusalException>(() =>
            PointerClassifier.Scan([new(0x7000, page, "/usr/lib/libfoo.so")], _st.Vma, _st.Parse()));
        Assert.Equal("unclassifiable pointer into the stack at 0x7040 (in /usr/lib/libfoo.so)", e.Message);
    }
}
