"""Writes unified diffs (-p1, a/ and b/ prefixes) from edits of a tree's files: what the sample and test source
patches are made with (src/Sandbox/patches/make-patches.py, tests/Data/diff/make-cases.py). Imported by them."""
import os
import subprocess
import tempfile


def write_patch(path, note, tree, edits):
    """Writes to path a patch of tree's files: note (a comment line) first, then one diff per edited file.
    edits: (file, old text, new text) triples, applied in order; old must be in the file."""
    out = ''
    with tempfile.TemporaryDirectory() as d:
        for f in sorted({e[0] for e in edits}):
            base = open(os.path.join(tree, f)).read()
            new = base
            for (ef, old, rep) in edits:
                if ef == f:
                    assert old in new, (path, f, old)
                    new = new.replace(old, rep, 1)
            for side, text in (('a', base), ('b', new)):
                os.makedirs(os.path.join(d, side), exist_ok=True)
                with open(os.path.join(d, side, f), 'w') as w:
                    w.write(text)
            r = subprocess.run(['diff', '-u', 'a/' + f, 'b/' + f], cwd=d, capture_output=True, text=True)
            lines = r.stdout.split('\n')
            lines[0], lines[1] = '--- a/' + f, '+++ b/' + f
            out += '\n'.join(lines)
    with open(path, 'w') as p:
        p.write(note + '\n\n' + out)
