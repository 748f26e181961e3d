using System.Reflection;
using System.Reflection.Emit;
using Xunit;

namespace Resident.Tests.Architecture;

/// <summary>
/// Resident.Core's folders form a pipeline, each namespace using only the ones before it
/// (docs/design.md, "The folders"). Checked on the compiled assembly: every type a type's
/// signatures, fields, base types and method bodies (their IL tokens) refer to must belong to
/// its own layer or an earlier one.
/// </summary>
public sealed class LayeringTests
{
    /// <summary>The layers in dependency order; Resident (the root) holds Interop/ and RefusalException.</summary>
    public static readonly string[] Order =
    [
        "Resident", "Resident.Proc", "Resident.Elf", "Resident.Format", "Resident.HookContract", "Resident.Trace",
        "Resident.Snapshots", "Resident.Capture", "Resident.Export", "Resident.Registry", "Resident.Config", "Resident.Activation",
        "Resident.Bench", "Resident.Diagnosis",
    ];

    static readonly Assembly Core = typeof(RefusalException).Assembly;

    static int Layer(Type t)
    {
        while (t.DeclaringType is { } outer)
            t = outer;
        int i = Array.IndexOf(Order, t.Namespace ?? "");
        return i;
    }

    [Fact]
    public void EveryNamespaceIsALayer()
    {
        var unknown = Core.GetTypes().Where(t => t.DeclaringType is null && !t.Name.StartsWith('<') && Layer(t) < 0)
            .Select(t => t.FullName).ToList();
        Assert.True(unknown.Count == 0, "types outside the layers of LayeringTests.Order: " + string.Join(", ", unknown));
    }

    [Fact]
    public void EachLayerUsesOnlyTheOnesBeforeIt()
    {
        var violations = new SortedSet<string>();
        foreach (var type in Core.GetTypes())
        {
            int layer = Layer(type);
            if (layer < 0)
                continue;
            foreach (var used in Referenced(type))
                if (used.Assembly == Core && Layer(used) > layer)
                    violations.Add($"{Outer(type).FullName} ({Order[layer]}) uses {Outer(used).FullName} ({Order[Layer(used)]})");
        }
        Assert.True(violations.Count == 0, "dependencies against the pipeline order:\n" + string.Join("\n", violations));
    }

    static Type Outer(Type t)
    {
        while (t.DeclaringType is { } outer)
            t = outer;
        return t;
    }

    const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    static IEnumerable<Type> Referenced(Type type)
    {
        var found = new List<Type>();
        void Add(Type? t)
        {
            if (t is null)
                return;
            if (t.HasElementType)
            {
                Add(t.GetElementType());
                return;
            }
            if (t.IsGenericType && !t.IsGenericTypeDefinition)
                foreach (var a in t.GetGenericArguments())
                    Add(a);
            if (!t.IsGenericParameter)
                found.Add(t.IsGenericType ? t.GetGenericTypeDefinition() : t);
        }
        Add(type.BaseType);
        foreach (var i in type.GetInterfaces())
            Add(i);
        foreach (var f in type.GetFields(All))
            Add(f.FieldType);
        foreach (var p in type.GetProperties(All))
            Add(p.PropertyType);
        foreach (var m in type.GetMethods(All).Cast<MethodBase>().Concat(type.GetConstructors(All)))
        {
            if (m is MethodInfo mi)
                Add(mi.ReturnType);
            foreach (var p in m.GetParameters())
                Add(p.ParameterType);
            foreach (var member in BodyTokens(m))
                switch (member)
                {
                    case Type t: Add(t); break;
                    case FieldInfo f: Add(f.DeclaringType); Add(f.FieldType); break;
                    case MethodBase mb: Add(mb.DeclaringType); break;
                }
        }
        return found;
    }

    static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    /// <summary>The members and types a method body's IL refers to by token.</summary>
    static IEnumerable<MemberInfo> BodyTokens(MethodBase m)
    {
        byte[]? il;
        try { il = m.GetMethodBody()?.GetILAsByteArray(); }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException) { il = null; }
        if (il is null)
            yield break;
        Type[]? typeArgs = m.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        Type[]? methodArgs = m.IsGenericMethod ? m.GetGenericArguments() : null;
        for (int i = 0; i < il.Length;)
        {
            short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            var op = OpCodesByValue[value];
            switch (op.OperandType)
            {
                case OperandType.InlineMethod:
                case OperandType.InlineField:
                case OperandType.InlineType:
                case OperandType.InlineTok:
                    int token = BitConverter.ToInt32(il, i);
                    MemberInfo? member = null;
                    try { member = m.Module.ResolveMember(token, typeArgs, methodArgs); }
                    catch (ArgumentException) { }
                    if (member is not null)
                        yield return member;
                    i += 4;
                    break;
                case OperandType.InlineSwitch:
                    i += 4 + 4 * BitConverter.ToInt32(il, i);
                    break;
                case OperandType.InlineNone: break;
                case OperandType.ShortInlineBrTarget:
                case OperandType.ShortInlineI:
                case OperandType.ShortInlineVar: i += 1; break;
                case OperandType.InlineVar: i += 2; break;
                case OperandType.InlineI8:
                case OperandType.InlineR: i += 8; break;
                default: i += 4; break;
            }
        }
    }
}
