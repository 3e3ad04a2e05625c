"""configs/RECIPES.md and the configs cannot drift apart.

RECIPES.md puts every dense config beside its source recipe, field by field.
This test reads its tables and checks, for each row:

* "ours": the value in every config of the section (loaded with mmengine);
* "source": the value in the source config, read from the mmseg/mmdet
  release installed here (the ``load as`` column of the Sources table), so
  the table cannot misquote a source either;
* a value that differs from the source's has its reason written down.

Every dense config must belong to exactly one section.

Value cells are Python literals (``dict(...)``, arithmetic such as
``0.9**(7 / 61)`` allowed) or ``unset`` (the key is absent or None).
"""
import ast
import importlib
import math
import operator
import os.path as osp
import re
from typing import Any, Dict, List, Tuple

import pytest
from mmengine.config import Config

from _configs import DENSE_CONFIGS, REPO, load_config

RECIPES = osp.join(REPO, 'configs', 'RECIPES.md')
UNSET = object()
_NO_SOURCE = ('', '-', '—')


# --- reading the markdown ---------------------------------------------------
def _cells(line: str) -> List[str]:
    return [c.strip() for c in line.strip().strip('|').split('|')]


def _code(cell: str) -> str:
    """The text inside the first pair of backticks (or the cell)."""
    match = re.search(r'`([^`]*)`', cell)
    return match.group(1) if match else cell


def parse(text: str) -> Tuple[Dict[str, str], List[dict]]:
    """Sources (id -> load path) and sections (title, configs, tables)."""
    sources: Dict[str, str] = {}
    sections: List[dict] = []
    current = None
    lines = text.splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.startswith('## '):
            current = dict(title=line[3:].strip(), configs=[], tables=[])
            sections.append(current)
        elif current is not None and line.startswith('Configs:'):
            current['configs'] = re.findall(r'`([^`]+\.py)`', line)
        elif line.startswith('|') and k + 1 < len(lines) and \
                re.match(r'^\|\s*:?-', lines[k + 1]):
            header = _cells(line)
            rows = []
            k += 2
            while k < len(lines) and lines[k].startswith('|'):
                rows.append(_cells(lines[k]))
                k += 1
            if header[0] == 'id':  # the Sources table
                col = header.index('load as')
                sources.update({_code(r[0]): _code(r[col]) for r in rows})
            elif current is not None:
                current['tables'].append((header, rows))
            continue
        k += 1
    return sources, sections


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub,
           ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}


def value(cell: str) -> Any:
    """A value cell: ``unset`` or a literal (dicts, arithmetic allowed)."""
    text = _code(cell)
    if text == 'unset':
        return UNSET

    def ev(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Tuple, ast.List)):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {ev(k): ev(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == 'dict' \
                and not node.args:
            return {kw.arg: ev(kw.value) for kw in node.keywords}
        raise ValueError(f'not a plain value: {text!r}')

    return ev(ast.parse(text, mode='eval').body)


# --- reading a config -------------------------------------------------
def lookup(cfg: Any, key: str) -> Any:
    """``a.b[0].c`` or ``a.pipeline[type=RandomResize].scale`` in ``cfg``;
    UNSET when a part is missing or None."""
    node = cfg
    for part in re.findall(r'[^.\[\]]+|\[[^\]]+\]', key):
        if node is None:
            return UNSET
        if part.startswith('['):
            inner = part[1:-1]
            if inner.startswith('type='):
                matches = [t for t in node if t.get('type') == inner[5:]]
                assert len(matches) == 1, f'{key}: {len(matches)} matches'
                node = matches[0]
            else:
                index = int(inner)
                if not isinstance(node, (list, tuple)) or index >= len(node):
                    return UNSET
                node = node[index]
        else:
            if not isinstance(node, dict) or part not in node:
                return UNSET
            node = node[part]
    return UNSET if node is None else node


def normalise(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: normalise(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return [normalise(v) for v in obj]
    return obj


def same(a: Any, b: Any) -> bool:
    a, b = normalise(a), normalise(b)
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a is b if a is UNSET or b is UNSET else a == b


_SOURCE_CFGS: Dict[str, Config] = {}


def source_config(load_as: str) -> Config:
    """``mmseg::path`` / ``mmdet::path``: the config file of the installed
    release (``<package>/.mim/configs/path``)."""
    if load_as not in _SOURCE_CFGS:
        package, _, path = load_as.partition('::')
        root = osp.dirname(importlib.import_module(package).__file__)
        # the ConvNeXt sources import mmpretrain, not installed here
        _SOURCE_CFGS[load_as] = Config.fromfile(
            osp.join(root, '.mim', 'configs', path),
            import_custom_modules=False)
    return _SOURCE_CFGS[load_as]


with open(RECIPES, encoding='utf-8') as _f:
    SOURCES, SECTIONS = parse(_f.read())


def _config_path(name: str) -> str:
    return osp.join(REPO, 'configs', name)


# --- the checks ------------------------------------------------------------
def test_recipes_md_is_read():
    assert len(SOURCES) >= 10 and len(SECTIONS) >= 8
    rows = sum(len(r) for s in SECTIONS for _, r in s['tables'])
    assert rows >= 100, rows


def test_every_dense_config_has_one_section():
    listed = [_config_path(c) for s in SECTIONS for c in s['configs']]
    missing = sorted(set(DENSE_CONFIGS) - set(listed))
    unknown = sorted(set(listed) - set(DENSE_CONFIGS))
    twice = sorted({p for p in listed if listed.count(p) > 1})
    assert not (missing or unknown or twice), dict(
        missing=missing, unknown=unknown, twice=twice)


def _field_rows():
    for section in SECTIONS:
        for header, rows in section['tables']:
            if header[0] != 'field':
                continue
            assert header == ['field', 'key', 'ours', 'source', 'source key',
                              'source value', 'why different'], header
            for row in rows:
                yield section, row


FIELD_ROWS = list(_field_rows())


@pytest.mark.parametrize(
    'section,row', FIELD_ROWS,
    ids=[f"{s['title']}: {r[0]}" for s, r in FIELD_ROWS])
def test_field_row(section, row):
    field, key, ours, source, source_key, source_value, why = row
    want = value(ours)
    for name in section['configs']:
        got = lookup(load_config(_config_path(name)).to_dict(), _code(key))
        assert same(got, want), f'{name}: {_code(key)} is {got!r}, ' \
            f'RECIPES.md says {want!r}'
    if _code(source_key) in _NO_SOURCE:
        assert why, f'{field}: ours has no source counterpart; say why'
        return
    load_as = SOURCES[_code(source)]
    theirs = value(source_value)
    got = lookup(source_config(load_as).to_dict(), _code(source_key))
    assert same(got, theirs), f'{load_as}: {_code(source_key)} is ' \
        f'{got!r}, RECIPES.md says {theirs!r}'
    if not same(want, theirs):
        assert why, f'{field}: ours differs from the source; say why'


def _config_rows():
    for section in SECTIONS:
        for header, rows in section['tables']:
            if header[0] != 'config':
                continue
            assert header[1] == 'source' and header[-1] == 'why different'
            for row in rows:
                yield section, header, row


CONFIG_ROWS = list(_config_rows())


def test_config_tables_cover_their_sections():
    for section in SECTIONS:
        for header, rows in section['tables']:
            if header[0] == 'config':
                assert sorted(_code(r[0]) for r in rows) == \
                    sorted(section['configs']), section['title']


@pytest.mark.parametrize(
    'section,header,row', CONFIG_ROWS,
    ids=[_code(r[0]) for _, _, r in CONFIG_ROWS])
def test_config_row(section, header, row):
    cfg = load_config(_config_path(_code(row[0]))).to_dict()
    source = source_config(SOURCES[_code(row[1])]).to_dict()
    why = row[-1]
    previous = None
    for title, cell in zip(header[2:-1], row[2:-1]):
        if title.startswith('source '):
            theirs = value(cell)
            got = lookup(source, _code(title[len('source '):]))
            assert same(got, theirs), f'{title}: source has {got!r}'
            if previous is not None and not same(previous, theirs):
                assert why, f'{row[0]}: {title} differs; say why'
        else:
            previous = value(cell)
            got = lookup(cfg, _code(title))
            assert same(got, previous), \
                f'{row[0]}: {_code(title)} is {got!r}, table says {previous!r}'


# --- the parser itself ------------------------------------------------
def test_value_and_lookup():
    assert value('`0.9**(7 / 61)`') == pytest.approx(0.9**(7 / 61))
    assert value("`dict(type='A', x=(1, 2))`") == dict(type='A', x=[1, 2])
    assert value('`unset`') is UNSET
    with pytest.raises(ValueError):
        value('`__import__("os")`')
    cfg = dict(a=dict(p=[dict(type='X', s=1), dict(type='Y', s=2)]), n=None)
    assert lookup(cfg, 'a.p[type=Y].s') == 2
    assert lookup(cfg, 'a.p[0].s') == 1
    assert lookup(cfg, 'n.x') is UNSET and lookup(cfg, 'a.q') is UNSET
    assert not same(0.1, 0.2) and same((1, 2), [1, 2])
