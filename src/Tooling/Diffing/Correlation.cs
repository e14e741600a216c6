using System.Text.RegularExpressions;

namespace XenLivepatch.Tooling.Diffing;

/// <summary>
/// Which function or object of the patched object is which of the original: by name, with gcc's clone numbers
/// and static locals' numbers (which change between builds) matched through their users.
/// </summary>
internal static partial class Correlation
{
    [GeneratedRegex(@"\.\d+")]
    private static partial Regex NumberSuffix();

    [GeneratedRegex(@"^.+\.\d+$")]
    private static partial Regex StaticLocalName();

    /// <summary>The name with gcc's numbers taken out: <c>foo.isra.3</c> and <c>foo.isra.7</c> compare equal.</summary>
    private static string Unnumbered(string name) => NumberSuffix().Replace(name, ".");

    private static bool IsStaticLocal(Entity e) => e.IsLocal && !e.IsFunction && StaticLocalName().IsMatch(e.Name);

    private static bool Correlatable(Entity e) => e.Section.Kind != SectionKind.Hooks;

    /// <summary>Pairs every entity of <paramref name="original"/> with its twin in <paramref name="patched"/>, where it has one.</summary>
    public static void Run(DiffUnit original, DiffUnit patched)
    {
        // gcc's clones carry numbers that change between builds: name the patched one as the original's.
        var baseNames = new HashSet<string>(original.Entities.Select(e => e.Name), StringComparer.Ordinal);
        var patchedNames = new HashSet<string>(patched.Entities.Select(e => e.Name), StringComparer.Ordinal);
        var claimed = new HashSet<Entity>(ReferenceEqualityComparer.Instance);
        foreach (var p in patched.Entities.Where(e => e.IsFunction && !baseNames.Contains(e.Name) && NumberSuffix().IsMatch(e.Name)))
        {
            string key = Unnumbered(p.Name);
            var b = original.Entities.Find(x => x.IsFunction && !patchedNames.Contains(x.Name) && !claimed.Contains(x) && Unnumbered(x.Name) == key);
            if (b == null)
                continue;
            claimed.Add(b);
            p.Name = b.Name;
        }

        // By name, static locals aside.
        var byName = new Dictionary<string, Entity>(StringComparer.Ordinal);
        foreach (var b in original.Entities.Where(e => Correlatable(e) && !IsStaticLocal(e)))
            byName.TryAdd(Key(b), b);
        foreach (var p in patched.Entities.Where(e => Correlatable(e) && !IsStaticLocal(e)))
        {
            if (byName.Remove(Key(p), out var b))
                Twin(b, p);
        }

        // Static locals (name.N): gcc numbers them per object, so the number may change. The twin is the
        // variable of the same name that the twin of a function using the original uses.
        foreach (var b in original.Entities.Where(IsStaticLocal))
        {
            string stem = Unnumbered(b.Name);
            Entity? found = null;
            foreach (var user in Users(original, b))
            {
                if (user.Twin == null)
                    continue;
                foreach (var r in user.Twin.Section.RelocationsIn(user.Twin.Start, user.Twin.Size))
                {
                    if (r.Target.Entity is { } t && t.Twin == null && IsStaticLocal(t) && Unnumbered(t.Name) == stem)
                    {
                        found = t;
                        break;
                    }
                }
                if (found != null)
                    break;
            }
            if (found == null)
                continue;
            found.Name = b.Name;
            Twin(b, found);
        }
    }

    private static string Key(Entity e) => (e.IsFunction ? "f:" : "o:") + e.Name;

    private static void Twin(Entity b, Entity p)
    {
        b.Twin = p;
        p.Twin = b;
    }

    /// <summary>The entities whose relocations reach <paramref name="target"/>.</summary>
    private static IEnumerable<Entity> Users(DiffUnit u, Entity target)
    {
        foreach (var s in u.Sections)
        {
            foreach (var r in s.Relocations)
            {
                if (!ReferenceEquals(r.Target.Entity, target))
                    continue;
                if (DiffUnit.Cover(s, (long)r.Offset) is { } user && !ReferenceEquals(user, target))
                    yield return user;
            }
        }
    }
}
