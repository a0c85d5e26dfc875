"""DESIGN.md stays true to the tree: every Python file of plugins/ is named in its Parts list."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def parts_section():
    text = (ROOT / "DESIGN.md").read_text()
    start = text.index("## Parts")
    return text[start : text.index("\n## ", start + 1)]


def test_every_plugin_file_is_named_in_the_parts_list():
    parts = parts_section()
    missing = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        # a file is named by its path, by its name, or (action plugins, filters) by its folder's line
        named = path.name in parts or path.stem in parts
        if not named:
            missing.append(str(path.relative_to(ROOT)))
    assert missing == [], "DESIGN.md's Parts list does not name: %s" % ", ".join(missing)


def test_every_file_the_parts_list_names_exists():
    parts = parts_section()
    names = {
        word.strip("`,():").rsplit("/", 1)[-1]
        for word in parts.split()
        if word.strip("`,():").endswith(".py")
    }
    found = {path.name for path in (ROOT / "plugins").rglob("*.py")}
    assert names - found == set(), "DESIGN.md names files that do not exist: %s" % sorted(
        names - found
    )
