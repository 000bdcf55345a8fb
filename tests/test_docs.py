"""The documentation cannot drift from the code.

Every key the run-config reader and the targets reader accept is documented in
``docs/configuration.md`` and ``docs/targets.md`` (and nothing they reject is), every rule kind
has its section, and the README stays short and shows the test command that CI runs. The keys
are read from the readers' own source (the sets passed to ``known(...)``), so a key added to
the code without docs fails here. Fast: no data, no network, no mkdocs.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import shlex
import tomllib
from pathlib import Path

import coverage15

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"

# run-config section (as the reader names it) -> heading of its table in configuration.md
CONFIG_HEADINGS = {
    "top": "## Top level",
    "analysis": "## `[analysis]`",
    "analysis.profiles": "## `[[analysis.profiles]]`",
    "population": "## `[population]`",
    "map": "## `[map]`",
    "network": "## `[network]`",
    "units": "## `[units]` and `[districts]`",
    "layers": "## `[demand]` and `[layers.KEY]`",
    "accept": "## `[accept]`",
    "scale": "## `[scale]`",
}
# readers that get their section as an argument -> the section they read
READER_SECTIONS = {"_read_units": "units", "_read_layer": "layers", "_read_network": "network",
                   "_read_profiles": "analysis.profiles"}


def _tree(function: object) -> ast.Module:
    source = inspect.getsourcefile(function)  # type: ignore[arg-type]
    assert source is not None
    return ast.parse(Path(source).read_text(encoding="utf-8"))


def _set_of(node: ast.expr, scope: ast.FunctionDef) -> set[str]:
    """The strings of a set literal, or of the set literal a local name was assigned."""
    if isinstance(node, ast.Name):
        for stmt in ast.walk(scope):
            if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Set)
                    and any(isinstance(t, ast.Name) and t.id == node.id
                            for t in stmt.targets)):
                node = stmt.value
                break
    assert isinstance(node, ast.Set), f"{scope.name}: keys not a set literal: {ast.dump(node)}"
    return {ast.literal_eval(e) for e in node.elts}


def accepted_config_keys() -> dict[str, set[str]]:
    """Section -> keys, from every ``r.known(table, section, keys)`` call of the reader."""
    keys: dict[str, set[str]] = {}
    for function in ast.walk(_tree(coverage15.load_config)):
        if not isinstance(function, ast.FunctionDef):
            continue
        for call in ast.walk(function):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "known" and len(call.args) == 3):
                continue
            section_node = call.args[1]
            if isinstance(section_node, ast.Constant):
                section = section_node.value
            else:
                assert function.name in READER_SECTIONS, (
                    f"{function.name} reads a config section: add it to READER_SECTIONS")
                section = READER_SECTIONS[function.name]
            keys.setdefault(section, set()).update(_set_of(call.args[2], function))
    return keys


def _section(text: str, heading: str) -> str:
    """The part of a page from the line starting with ``heading`` to the next ## heading."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(heading)]
    assert len(starts) == 1, f"expected one heading {heading!r}, found {len(starts)}"
    part = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("## "):
            break
        part.append(line)
    return "\n".join(part)


def documented_keys(part: str) -> set[str]:
    """Keys in the first cell of the table rows of a page part (`a` or `x`, `y`)."""
    keys: set[str] = set()
    for line in part.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            keys.update(re.findall(r"`([^`]+)`", cells[1]))
    return keys


def test_config_reader_found_every_section():
    keys = accepted_config_keys()
    assert set(keys) == set(CONFIG_HEADINGS), (
        "a config section is read but has no table in docs/configuration.md (or is gone)")
    assert {"walk_speed_kmh", "access_leg"} <= keys["analysis"]  # the parse works


def test_every_config_key_is_documented_and_no_other():
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for section, accepted in accepted_config_keys().items():
        documented = documented_keys(_section(page, CONFIG_HEADINGS[section]))
        missing = sorted(accepted - documented)
        extra = sorted(documented - accepted)
        assert not missing, f"[{section}] keys the code accepts, not documented: {missing}"
        assert not extra, f"[{section}] keys documented that the code rejects: {extra}"


def _load_targets() -> object:
    load = getattr(coverage15, "load_targets", None)
    return load or importlib.import_module("coverage15.targets").load_targets


def accepted_rule_keys_and_kinds() -> tuple[set[str], set[str]]:
    """The rule keys the targets reader accepts (``known = {...}``) and ``KINDS``."""
    tree = _tree(_load_targets())
    keys: set[str] = set()
    kinds: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "_rule_from":
            keys = _set_of(ast.Name(id="known"), node)
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "KINDS" for t in targets):
            assert node.value is not None
            kinds = set(ast.literal_eval(node.value))
    assert keys, "the targets reader's known keys were not found"
    assert kinds, "the targets reader's KINDS were not found"
    return keys, kinds


def test_every_rule_key_and_kind_is_documented():
    keys, kinds = accepted_rule_keys_and_kinds()
    page = (DOCS / "targets.md").read_text(encoding="utf-8")
    documented = documented_keys(_section(page, "## Keys of a rule"))
    assert not keys - documented, f"rule keys not documented: {sorted(keys - documented)}"
    assert not documented - keys, f"rule keys documented, rejected: {sorted(documented - keys)}"
    headed = set(re.findall(r"^## `(\w+)`", page, flags=re.MULTILINE))
    assert headed == kinds, f"rule kinds with a section {sorted(headed)} != code {sorted(kinds)}"


def _ci_test_command() -> str:
    lines = [line.strip() for line in CI.read_text(encoding="utf-8").splitlines()
             if "-m pytest" in line and not line.lstrip().startswith("#")]
    assert len(lines) == 1, f"expected one pytest line in .ci/run, found {lines}"
    return lines[0]


def test_readme_is_short_and_shows_the_two_commands():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines (at most 150)"
    commands = [line.strip() for line in lines
                if line.strip() and not line.lstrip().startswith(("#", "`", "-", "|", "!"))
                and ".venv/bin/" in line]
    # command 2 is exactly what CI runs
    assert _ci_test_command() in commands
    # command 1 installs and runs the main job on the bundled config
    install = [c for c in commands if "coverage15 run" in c]
    assert len(install) == 1, f"expected one install-and-run command, found {install}"
    words = shlex.split(install[0])
    assert "-e" in words, "command 1 installs the package (pip install -e)"
    extras = re.findall(r"\[([\w,]+)\]", words[words.index("-e") + 1])
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    known = declared["project"]["optional-dependencies"]
    for extra in ",".join(extras).split(","):
        assert not extra or extra in known, f"README installs the unknown extra {extra!r}"
    config = words[words.index("run", words.index(".venv/bin/coverage15")) + 1]
    assert (ROOT / config).is_file(), f"README runs {config}, which does not exist"


def test_docs_front_page_shows_the_same_test_command():
    page = (DOCS / "index.md").read_text(encoding="utf-8")
    assert _ci_test_command() in page.splitlines()


def test_readme_links_resolve():
    text = README.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        path = target.split("#", 1)[0]
        if path and "://" not in path:
            assert (ROOT / path).exists(), f"README links to {target}, which does not exist"


def _blocks(page: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page, flags=re.S)


def test_targets_page_examples_parse_and_its_texts_are_the_codes(tmp_path):
    """Every example rule on docs/targets.md loads; its reason and error texts are the code's."""
    from coverage15 import ConfigError
    from coverage15.reach import _reasons
    from coverage15.reach.targets import Rule, load_targets

    page = (DOCS / "targets.md").read_text(encoding="utf-8")
    examples = [b for b in _blocks(page, "toml") if "[[rules]]" in b]
    bad = [b for b in examples if "\nlayers = " in b]
    assert len(bad) == 1
    for i, block in enumerate(b for b in examples if b not in bad):
        path = tmp_path / f"example{i}.toml"
        path.write_text(block, encoding="utf-8")
        assert len(load_targets(path)) >= 1, block
    texts = "\n".join(_blocks(page, "text"))
    labels = {"centre": "社区综合为老服务中心", "meal_point": "助餐服务点",
              "canteen": "社区长者食堂"}
    one = Rule(id="one_plus_n", kind="one_plus_n", centre_layers=("centre",),
               station_layers=("meal_point", "canteen"), min_share=0.9)
    meal = Rule(id="meal_within_reach", kind="demand_share", layer="meal_point", min_share=0.8)
    each = Rule(id="centre_in_jiezhen", kind="full_coverage", layer="centre")
    city = Rule(id="centres_citywide", kind="citywide_count", layer="centre", min_count=500)
    said = [*_reasons.share_reason(one, 57 / 210, n_points=210, n_pass=57, labels=labels,
                                   sides=(57 / 210, 1.0)),
            *_reasons.share_reason(meal, 0.7, n_points=120, n_pass=84, labels=labels),
            *_reasons.count_reason(each, 0, labels),
            _reasons.citywide_reason_zh(city, 323, labels)]
    for line in said:
        assert line in texts, line
    path = tmp_path / "bad.toml"
    path.write_text(bad[0], encoding="utf-8")
    try:
        load_targets(path)
    except ConfigError as exc:
        error = str(exc).replace(str(path), "bad.toml")
    else:
        raise AssertionError("the bad example loaded")
    assert error in texts
