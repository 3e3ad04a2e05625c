"""No block of 6 or more lines of config code is written twice.

Shared recipe pieces belong in ``configs/_base_/`` and variants inherit their
sibling (mmdet style), so the same block in two places is a copy that will
drift. Every ``.py`` under ``configs/`` (fragments included) is compared in a
canonical form that does not depend on how it was formatted: the syntax tree
is written out again, each statement on one line if it fits in 79 columns,
else its dict/list/call opened on one line and each item below it, and so on
down (as a formatter would); comments, spacing, quotes and number spelling
disappear.
"""
import ast
import glob
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Tuple

from _configs import CONFIG_DIR, DENSE_CONFIGS, REPO

WINDOW = 6
WIDTH = 79  # the line length of the project's style (flake8/yapf)
INDENT = 4


def _items(node: ast.expr) -> List[Tuple[str, ast.expr]]:
    """(prefix, value) of the items of a container expression."""
    if isinstance(node, ast.Call):
        return [('', a) for a in node.args] + [
            (f'{k.arg}=' if k.arg else '**', k.value) for k in node.keywords
        ]
    if isinstance(node, ast.Dict):
        return [((f'{ast.unparse(k)}: ' if k is not None else '**'), v)
                for k, v in zip(node.keys, node.values)]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [('', e) for e in node.elts]
    return []


def _emit(node: ast.expr, head: str, depth: int,
          out: List[Tuple[int, str]]) -> None:
    """Write ``head + node`` on one line if it fits in ``WIDTH`` columns at
    its depth, else the opening and then each item on lines of their own."""
    text = head + ast.unparse(node)
    items = _items(node)
    if INDENT * depth + len(text) <= WIDTH or not items:
        out.append((node.lineno, text))
        return
    opening = {ast.Dict: '{', ast.List: '[', ast.Tuple: '(', ast.Set: '{'}
    head += (ast.unparse(node.func) + '(' if isinstance(node, ast.Call) else
             opening[type(node)])
    out.append((node.lineno, head))
    for prefix, value in items:
        _emit(value, prefix, depth + 1, out)


def normalised_lines(source: str) -> List[Tuple[int, str]]:
    """``(line number, canonical code)`` of a config's source."""
    out: List[Tuple[int, str]] = []
    for stmt in ast.parse(source).body:
        if isinstance(stmt, ast.Assign):
            targets = ' = '.join(ast.unparse(t) for t in stmt.targets)
            _emit(stmt.value, targets + ' = ', 0, out)
        else:
            out.append((stmt.lineno, ast.unparse(stmt)))
    return out


def repeated_blocks(sources: Dict[str, str],
                    window: int = WINDOW) -> List[List[Tuple[str, int]]]:
    """Places (file, first line) of every block of ``window`` normalised
    lines found more than once, one list per block."""
    seen: Dict[Tuple[str, ...], List[Tuple[str, int]]] = defaultdict(list)
    for name, source in sources.items():
        lines = normalised_lines(source)
        for k in range(len(lines) - window + 1):
            block = tuple(text for _, text in lines[k:k + window])
            seen[block].append((name, lines[k][0]))
    return [places for places in seen.values() if len(places) > 1]


#: Not checked (yet): the two demo configs still share their train-loop and
#: hook settings; they are self-contained CPU examples outside the recipe
#: tree, to be folded into a _base_ fragment of their own.
EXCLUDED = ('demo', )


def _config_sources() -> Dict[str, str]:
    sources = {}
    for path in sorted(
            glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)):
        if osp.relpath(path, CONFIG_DIR).split(osp.sep)[0] in EXCLUDED:
            continue
        with open(path, encoding='utf-8') as f:
            sources[osp.relpath(path, REPO)] = f.read()
    return sources


def test_no_config_block_is_written_twice():
    sources = _config_sources()
    # guard against a check that passes because it saw nothing
    assert len(sources) > len(DENSE_CONFIGS) >= 26
    assert sum(len(normalised_lines(s)) for s in sources.values()) > 300
    repeats = repeated_blocks(sources)
    report = '\n'.join(
        ' = '.join(f'{name}:{line}' for name, line in places)
        for places in repeats)
    assert not repeats, (
        f'{len(repeats)} blocks of {WINDOW}+ lines are written more than '
        f'once (move them to configs/_base_/ or inherit):\n{report}')


# --- the detector itself --------------------------------------------------
_BLOCK = """\
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'norm': dict(decay_mult=0.),
            'pos_embed': dict(decay_mult=0.)
        }))
"""


def test_detector_finds_a_copy_despite_formatting():
    other = ('# a comment\n' + _BLOCK.replace("'", '"')
             .replace('1e-4', '0.0001').replace('=dict(', '= dict(')
             .replace('    ', '  ').replace(',\n', ', ') + '\n# trailing\n')
    repeats = repeated_blocks({'a.py': 'x = 1\n' + _BLOCK, 'b.py': other})
    assert repeats, 'a reformatted copy was not found'
    assert {name for places in repeats for name, _ in places} == \
        {'a.py', 'b.py'}


def test_detector_ignores_shorter_blocks():
    five = ''.join(f"key{k} = dict(type='T', value={k})\n" for k in range(5))
    assert not repeated_blocks({'a.py': five + 'a = 1\n',
                                'b.py': five + 'b = 2\n'})
    assert repeated_blocks({'a.py': five + 'a = 1\n',
                            'b.py': five + 'a = 1\n'})


def test_canonical_form():
    lines = [text for _, text in normalised_lines(_BLOCK)]
    assert lines == [
        'optim_wrapper = dict(',
        "type='OptimWrapper'",
        "optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.05)",
        'paramwise_cfg=dict(',
        'custom_keys={',
        "'norm': dict(decay_mult=0.0)",
        "'pos_embed': dict(decay_mult=0.0)",
    ]
