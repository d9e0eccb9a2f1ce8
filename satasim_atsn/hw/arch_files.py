"""Architecture files: the designs shipped with the package (by bare name) and reading a YAML file into a raw
mapping, with one-line errors for a missing, unreadable or malformed file or another kind of the tool's files."""

from __future__ import annotations

from pathlib import Path

import yaml

from satasim_atsn.errors import ArchError, did_you_mean
from satasim_atsn.fileio import load_yaml_text, yaml_syntax_fix

#: the package's shipped architectures (satasim_atsn/data/archs/*.yaml), each given by its bare name
ARCH_DIR = Path(__file__).resolve().parent.parent / "data" / "archs"
#: the fix for a file that is no design at all: a copy of the shipped one, by its installed path (archs/ is the
#: checkout's link to it; an installed package has no archs/)
_START_FROM = f"start from a copy of the shipped design {ARCH_DIR / 'atsn16x16.yaml'}"


def available_archs() -> list[str]:
    """Names of the architectures shipped with the package (satasim_atsn/data/archs/*.yaml)."""
    return sorted(p.stem for p in ARCH_DIR.glob("*.yaml"))


def shipped_arch(name: str) -> Path | None:
    """The architecture shipped under a bare name ('atsn16x16'), else None (a path, a .yaml name, no such one)."""
    if "/" in name or "\\" in name or name.lower().endswith((".yaml", ".yml")):
        return None
    shipped = ARCH_DIR / f"{name}.yaml"
    return shipped if shipped.is_file() else None


def resolve_arch_path(name_or_path: str | Path) -> Path:
    """An existing file, or a bare name ('atsn16x16') -> the architecture shipped with the package."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists() or "/" in text or "\\" in text or text.endswith((".yaml", ".yml")):
        return path
    shipped = shipped_arch(text)
    if shipped is not None:
        return shipped
    raise ArchError.at(text, None, "no such architecture file or shipped architecture name",
                       did_you_mean(text, available_archs(), "shipped:"))


def read_yaml(path: Path) -> dict:
    """The raw mapping of an architecture file; a missing, unreadable or malformed file is one ArchError line."""
    where = str(path)
    if not path.exists():
        stem = path.name.rsplit(".", 1)[0] if path.suffix.lower() in (".yaml", ".yml") else path.name
        shipped = (f"a shipped design is given by its bare name: {stem}" if stem in available_archs() else
                   f"a shipped design is given by its bare name ({', '.join(available_archs())})")
        raise ArchError.at(where, None, "architecture file not found", f"check the path; {shipped}")
    if path.is_dir():  # it said "cannot read ([Errno 21] Is a directory ...); give a UTF-8 YAML file"
        inside = sorted(p.name for p in path.glob("*.yaml"))[:3]
        example = f"e.g. {path / inside[0]}" if inside else "an architecture YAML file"
        raise ArchError.at(where, None, "is a directory, not an architecture file",
                           f"give one of its files ({example}) or a shipped design's name "
                           f"({', '.join(available_archs())})")
    head = b""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
        text = path.read_text(encoding="utf-8")  # not the locale's: LC_ALL=C without UTF-8 mode reads ASCII
    except (OSError, UnicodeDecodeError) as error:
        problem = f"cannot read ({' '.join(str(error).split())[:200]})"
        if head == b"PK\x03\x04":  # a zip: a workload .npz given where the architecture goes
            raise ArchError.at(where, None, "is a workload (.npz), not an architecture YAML",
                               "give the architecture first, then the workload (satasim run ARCH WORKLOAD, "
                               "compare ARCH... WORKLOAD, verify ARCH [WORKLOAD])") from None
        raise ArchError.at(where, None, problem, "give a UTF-8 YAML file") from None
    try:
        raw = load_yaml_text(text, where, ArchError)
    except RecursionError:
        raise ArchError.at(where, None, "nested too deeply to be an architecture",
                           _START_FROM) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ArchError.at(where, at, f"not valid YAML ({problem})",
                           yaml_syntax_fix(text, error, "fix the syntax (is the file truncated?)")) from None
    if raw is None:
        raise ArchError.at(where, None, "the file is empty", _START_FROM)
    if not isinstance(raw, dict):
        raise ArchError.at(where, None, "must be a mapping of 'key: value' lines", _START_FROM)
    other = _other_kind_of_file(raw)
    if other:
        raise ArchError.at(where, None, f"is {other}, not an architecture",
                           f"give an architecture file: a shipped design's name ({', '.join(available_archs())}) or a "
                           f"copy of {ARCH_DIR / 'atsn16x16.yaml'} edited")
    return raw


def _other_kind_of_file(raw: dict) -> str | None:
    """What a YAML file given as an architecture is, when its keys say it is another of the tool's files."""
    if raw.get("format") == "satasim-tech":
        return "a technology table (an architecture names it with technology: FILE)"
    if "layers" in raw and "input_shape" in raw:
        return "a network file (satasim workload build --network FILE makes a workload of it)"
    if "vary" in raw or ("mode" in raw and "metrics" in raw):
        return "a study (satasim sweep runs it)"
    if "network" in raw and any(k in raw for k in ("rates", "default_rate", "timesteps")):
        return "a rate table (satasim workload build --rates FILE uses it)"
    if "metrics" in raw and "arch" in raw:
        return "a results file (satasim run --json writes them)"
    return None
