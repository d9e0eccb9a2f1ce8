"""The exit unit, one class per kind behind a registry (docs/microarchitecture.md section 3, docs/architecture.md).

Each kind carries its YAML fields and their validation, its table bytes, its decision cycles and
actions, its extra hardware instances for energy and area, and the snn policy it implements.
arch, mapping, engine and energy ask ``EXIT_UNITS[kind]``; none of them switches on the kind.
``hw/reference.py`` keeps its own literal copy of the decision (it is the engine's witness).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from satasim_atsn.errors import ArchError
from satasim_atsn.snn import exit_policies as ep

if TYPE_CHECKING:
    from satasim_atsn.hw.tech import Tech

_POS = (1, None)


def _fields(cfg: Any) -> Mapping[str, Any]:
    """An exit_unit config as a mapping: the validated dataclass, or a dict of (some of) its fields."""
    return asdict(cfg) if is_dataclass(cfg) else cfg


class ExitUnit:
    """One kind of exit unit. Subclasses set the class attributes and override what differs."""

    kind: ClassVar[str]  # exit_unit.kind in the architecture YAML
    accelerator_kind: ClassVar[str]  # the top-level 'kind' of an accelerator with this unit
    policy_name: ClassVar[str]  # the snn policy name (also the statistical workload's exit_hist/<name>)
    fields: ClassVar[dict[str, tuple]] = {}  # kind-only YAML fields: name -> (type, default, bounds) as arch.SCHEMA
    defaults: ClassVar[dict[str, Any]] = {}  # the value of each kind-only field a design leaves out
    min_multipliers: ClassVar[int] = 0
    # True: the unit decides when an image exits, so it needs its own tile (array.exit_unit_tiles: 1) and an
    # output layer to read; False: fixed T, and the output layer may run on the PEs (docs/microarchitecture.md 11)
    decides: ClassVar[bool] = True

    def validate(self, where: str, eu: dict) -> None:
        """Cross-field rules of a resolved exit_unit section (raises ArchError naming the field)."""
        if eu["multipliers"] < self.min_multipliers:
            raise ArchError.at(where, "exit_unit.multipliers", f"the {self.kind} unit needs at least one multiplier",
                               "set multipliers: 1")

    def table_bytes(self, eu: Any) -> int:
        """Bytes of lookup table the unit keeps in its data memory beside the output membranes."""
        return 0

    def lut_word_bits(self, eu: Any) -> int:
        """Bits of one table word a LUT read takes from the data memory (the DT unit's log table: 24)."""
        return 24

    def decide_cycles(self, eu: Any, classes: int) -> int:
        """Cycles of one image's exit decision (not taken at t = T)."""
        return 0

    def decide_actions(self, eu: Any, classes: int) -> dict[str, int]:
        """Action counts of one image's exit decision (names of hw.energy.ACTIONS)."""
        return {}

    def extra_instances(self, tech: Tech, quantity: str) -> float:
        """Leakage or area (``quantity``) of instances beyond its memory, adders, multipliers and comparator."""
        return 0.0

    def software_policy(self, cfg: Any) -> ep.ExitPolicy:
        """The floating-point rule this unit's decision stands for."""
        raise NotImplementedError

    def hardware_policy(self, cfg: Any) -> ep.ExitPolicy | None:
        """The bit-exact rule the unit computes, when it differs from the float rule (else None)."""
        return None

    def policy(self, cfg: Any) -> ep.ExitPolicy:
        """The functional policy the unit implements (what the traces run)."""
        return self.hardware_policy(cfg) or self.software_policy(cfg)


class AtUnit(ExitUnit):
    """ATSN's AT unit: softmax confidence by exp LUT against CL_init * tau_CL**(t-1) (eq. 17-18)."""

    kind = "at"
    accelerator_kind = "atsn"
    policy_name = "atsn"
    fields = {
        "exp_lut_entries": ("int", None, ep.LUT_ENTRIES_RANGE),
        "exp_frac_bits": ("int", None, ep.FRAC_BITS_RANGE),
        "cl_init": ("float", None, (0.0, 1.0)),
        "tau_cl": ("float", None, (0.0, 1.0)),
    }
    defaults = {"exp_lut_entries": ep.LUT_ENTRIES_DEFAULT,  # 256 words over (-16, 0]
                "exp_frac_bits": ep.ATSN_FRAC_BITS,  # 23: words of 24 bits, 3 bytes
                "cl_init": ep.CL_INIT_DEFAULT, "tau_cl": ep.TAU_CL_DEFAULT}  # Table 4: 0.999, 0.999
    min_multipliers = 1

    def validate(self, where: str, eu: dict) -> None:  # noqa: D102
        super().validate(where, eu)
        word = ep.lut_word_bytes(eu["exp_frac_bits"])
        if eu["exp_lut_entries"] * word > eu["data_memory_bytes"]:
            raise ArchError.at(where, "exit_unit.exp_lut_entries",
                               f"{eu['exp_lut_entries']} {word}-byte entries ({eu['exp_frac_bits']} fraction bits + 1) "
                               f"do not fit the {eu['data_memory_bytes']} B data memory",
                               "enlarge exit_unit.data_memory_bytes, or use fewer entries or exp_frac_bits")

    def table_bytes(self, eu: Any) -> int:  # noqa: D102
        return int(eu.exp_lut_entries) * self.word_bytes(eu)

    def word_bytes(self, eu: Any) -> int:
        """Bytes of one exp-table word: exit_unit.exp_frac_bits fraction bits + 1, rounded up to bytes."""
        bits = _fields(eu).get("exp_frac_bits")
        return ep.lut_word_bytes(int(ep.ATSN_FRAC_BITS if bits is None else bits))

    def lut_word_bits(self, eu: Any) -> int:  # noqa: D102
        return 8 * self.word_bytes(eu)

    def decide_cycles(self, eu: Any, classes: int) -> int:  # noqa: D102
        return 3 * classes + 1

    def decide_actions(self, eu: Any, classes: int) -> dict[str, int]:  # noqa: D102
        c = classes
        return {"exit_compares": c + 1, "exit_multiplies": 2 * c + 1, "exit_lut_reads": 2 * c,
                "exit_decision_adds": 2 * c}

    def _cl(self, cfg: Any) -> tuple[float, float]:
        f = _fields(cfg)
        cl, tau = f.get("cl_init"), f.get("tau_cl")
        return (float(ep.CL_INIT_DEFAULT if cl is None else cl), float(ep.TAU_CL_DEFAULT if tau is None else tau))

    def software_policy(self, cfg: Any) -> ep.ExitPolicy:  # noqa: D102
        return ep.AtsnPolicy(*self._cl(cfg))

    def hardware_policy(self, cfg: Any) -> ep.ExitPolicy:  # noqa: D102
        f = _fields(cfg)
        lut, bits = f.get("exp_lut_entries"), f.get("exp_frac_bits")
        return ep.AtsnPolicy(*self._cl(cfg), hardware=True,
                             lut_entries=int(ep.LUT_ENTRIES_DEFAULT if lut is None else lut),
                             frac_bits=int(ep.ATSN_FRAC_BITS if bits is None else bits))


class DtUnit(ExitUnit):
    """DTSNN's DT unit: normalised entropy of softmax against theta, one division per decision (eq. 5-7)."""

    kind = "dt"
    accelerator_kind = "dtsnn"
    policy_name = "dtsnn"
    fields = {
        "lut_bytes": ("int", None, (1, 2**40)),
        "divider_cycles": ("int", None, (1, 10**6)),
        "theta": ("float", None, (0.0, 1.0)),
    }
    defaults = {"lut_bytes": 6144,  # the paper's 6 KB lookup table
                "divider_cycles": 16,  # one 32-bit division, radix 4
                "theta": ep.THETA_DEFAULT}  # 0.1 (DESIGN.md)
    min_multipliers = 1

    def validate(self, where: str, eu: dict) -> None:  # noqa: D102
        super().validate(where, eu)
        if eu["lut_bytes"] > eu["data_memory_bytes"]:
            raise ArchError.at(where, "exit_unit.lut_bytes",
                               f"the {eu['lut_bytes']} B table does not fit the "
                               f"{eu['data_memory_bytes']} B data memory",
                               "enlarge exit_unit.data_memory_bytes")

    def table_bytes(self, eu: Any) -> int:  # noqa: D102
        return int(eu.lut_bytes)

    def decide_cycles(self, eu: Any, classes: int) -> int:  # noqa: D102
        return 5 * classes + int(eu.divider_cycles) + 1

    def decide_actions(self, eu: Any, classes: int) -> dict[str, int]:  # noqa: D102
        c = classes
        return {"exit_compares": c + 1, "exit_multiplies": 4 * c, "exit_lut_reads": 4 * c, "exit_divides": 1,
                "exit_decision_adds": 2 * c}

    def extra_instances(self, tech: Tech, quantity: str) -> float:  # noqa: D102
        return getattr(tech, quantity)("div_32b")

    def software_policy(self, cfg: Any) -> ep.ExitPolicy:  # noqa: D102
        theta = _fields(cfg).get("theta")
        return ep.DtsnnPolicy(theta=float(ep.THETA_DEFAULT if theta is None else theta))


class NoExitUnit(ExitUnit):
    """The conventional SNN's output unit: accumulates the output layer, never decides (all T timesteps)."""

    kind = "none"
    accelerator_kind = "conventional"
    policy_name = "fixed"
    decides = False

    def software_policy(self, cfg: Any) -> ep.ExitPolicy:  # noqa: D102
        return ep.FixedPolicy()


#: exit_unit.kind -> its unit; the order is the order of the YAML enumeration
EXIT_UNITS: dict[str, ExitUnit] = {unit.kind: unit for unit in (AtUnit(), DtUnit(), NoExitUnit())}
#: accelerator 'kind' -> the exit_unit.kind it carries
ACCELERATOR_EXIT_KIND = {unit.accelerator_kind: unit.kind for unit in EXIT_UNITS.values()}


def kind_fields() -> dict[str, tuple]:
    """Every kind-only exit_unit field (name -> schema entry), for the architecture schema."""
    out: dict[str, tuple] = {}
    for unit in EXIT_UNITS.values():
        out.update(unit.fields)
    return out
