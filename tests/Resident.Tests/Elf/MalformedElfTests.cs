using System.Buffers.Binary;
using Resident.Elf;
using Xunit;

namespace Resident.Tests.Elf;

/// <summary>
/// The small ELF readers on corrupted copies of the real ld.so: a malformed file is an
/// InvalidDataException (DynamicSymbols) or a RefusalException (LdsoFacts), never an index,
/// range or overflow exception that a caller would have to catch blindly — and that would
/// hide a bug in the reader itself. Seeded: the same corruptions every run.
/// </summary>
public sealed class MalformedElfTests
{
    static readonly byte[] Ldso = File.ReadAllBytes(Resident.Elf.ProgramFileCheck.SystemInterpreter);

    /// <summary>A copy with a few bytes overwritten where the readers look: the ELF header, the section header table, .dynsym's header.</summary>
    static byte[] Corrupt(Random rng)
    {
        var b = (byte[])Ldso.Clone();
        ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(40));
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(60));
        for (int n = rng.Next(1, 5); n > 0; n--)
        {
            int at = rng.Next(3) switch
            {
                0 => rng.Next(64),
                1 => (int)shoff + rng.Next(shnum * 64),
                _ => rng.Next(b.Length),
            };
            if (rng.Next(2) == 0)
                b[at] = (byte)rng.Next(256);
            else
                b[at] = rng.Next(2) == 0 ? (byte)0xff : (byte)0;
        }
        return b;
    }

    [Fact]
    public void DynamicSymbols_OnlyInvalidData()
    {
        var rng = new Random(1234);
        Assert.NotNull(DynamicSymbols.Find(Ldso, "__libc_stack_end"));
        int refused = 0;
        for (int i = 0; i < 5000; i++)
        {
            var bytes = Corrupt(rng);
            try { DynamicSymbols.Find(bytes, "__libc_stack_end"); }
            catch (InvalidDataException) { refused++; }
        }
        Assert.True(refused > 100, $"only {refused} of 5000 corruptions were refused: the corruption misses the tables");
    }

    [Fact]
    public void LdsoFacts_OnlyRefusal()
    {
        var rng = new Random(4321);
        string dir = Directory.CreateTempSubdirectory("resident-elf-").FullName;
        try
        {
            string path = Path.Combine(dir, "ld.so");
            for (int i = 0; i < 300; i++)
            {
                File.WriteAllBytes(path, Corrupt(rng));
                try { LdsoFacts.Read(path); }
                catch (RefusalException) { }
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
