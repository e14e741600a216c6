using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace XenLivepatch.Hypervisor;

/// <summary>Marks a method that runs while the CPUs are held (or just before, on the CPU that will hold them), so that <see cref="PauseCode"/> compiles it beforehand.</summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Constructor, Inherited = false)]
public sealed class RunsInPauseAttribute : Attribute;

/// <summary>
/// Compiles the code a pause runs before the pause, in a process whose code a JIT compiles: left to the JIT,
/// a method is compiled when first called, so the first action of a process would compile the pause's
/// methods while the other CPUs are held. Ahead-of-time code (the published CLI) has nothing to compile.
/// </summary>
/// <remarks>
/// Whether code is jitted is asked of the JIT itself (it has compiled methods by the time anything here
/// runs; NativeAOT has no JIT and counts none). <c>RuntimeFeature.IsDynamicCodeCompiled</c> does not tell:
/// a project that publishes with NativeAOT runs its JIT build with <c>IsDynamicCodeSupported</c> false.
/// </remarks>
public static class PauseCode
{
    private const BindingFlags AnyMethod = BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
    private const DynamicallyAccessedMemberTypes Methods = DynamicallyAccessedMemberTypes.PublicMethods | DynamicallyAccessedMemberTypes.NonPublicMethods;

    /// <summary>True when a JIT compiles this process's code.</summary>
    public static bool Jitted { get; } = System.Runtime.JitInfo.GetCompiledMethodCount() > 0;

    private static readonly HashSet<Type> s_prepared = [];

    /// <summary>Compiles the methods of <paramref name="type"/> marked <see cref="RunsInPauseAttribute"/>, once per process.</summary>
    public static void Prepare([DynamicallyAccessedMembers(Methods)] Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (!Jitted)
            return;
        lock (s_prepared)
        {
            if (!s_prepared.Add(type))
                return;
        }
        foreach (var m in type.GetMethods(AnyMethod))
        {
            if (!m.IsAbstract && !m.ContainsGenericParameters && m.IsDefined(typeof(RunsInPauseAttribute), inherit: false))
                RuntimeHelpers.PrepareMethod(m.MethodHandle);
        }
    }

    /// <summary>Compiles the methods of <paramref name="type"/> with these names (every overload).</summary>
    public static void Prepare([DynamicallyAccessedMembers(Methods)] Type type, params ReadOnlySpan<string> names)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (!Jitted)
            return;
        foreach (var m in type.GetMethods(AnyMethod))
        {
            if (!m.IsAbstract && !m.ContainsGenericParameters && names.Contains(m.Name))
                RuntimeHelpers.PrepareMethod(m.MethodHandle);
        }
    }

    /// <summary>Compiles the method a delegate calls.</summary>
    public static void Prepare(Delegate? callee)
    {
        if (Jitted && callee != null)
            RuntimeHelpers.PrepareMethod(callee.Method.MethodHandle);
    }
}
