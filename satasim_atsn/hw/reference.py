"""The independent witness: a literal, global-cycle model of docs/microarchitecture.md, for tiny networks.

Every cycle, every accelerator's controller advances its phase state machine by one cycle and the
shared DRAM channel starts at most one transaction. Inside a compute phase every PE runs the
per-cycle buffer model of section 4.1: every PE acts, then the fold's single multicast stream
delivers (from cycle ``L = hop_cycles * (rows + cols - 2)``, at most r spikes per cycle, a spike
only when every destination PE has room, head-of-line blocking otherwise), then every output
buffer drains. Nothing is
skipped and nothing is computed in closed form: the point of this file is to be obviously the
document's text, so that ``hw/engine.py`` (SimPy + numba, fast) can be checked against it exactly.

It shares with the engine only the architecture, the workload and the functional spike trace
(``workload/trace.py``); it never imports the engine (``hw/engine*.py``), ``hw/kernels.py`` or ``hw/mapping.py``:
groups, folds, PE blocks, weight shares and residency are derived below from section 3's text, so a
mapping bug on either side shows up as a disagreement. Plain Python loops over cycles: use it on tiny
networks only.

Readings of the document where its text leaves a choice (each also listed in the module tests):

* A PE pops a spike only if it belongs to the image it is working on (the input buffer is a
  FIFO in delivery order, so that is the head whenever the current image has unpopped spikes);
  otherwise the image's fire pass starts once all of its spikes are popped and processed.
* A multi-cycle fire checks the output buffer in its first cycle; once started it is busy for its
  cycles and pushes in its last one.
* The exit unit runs the PE state machine with a link of its own (no multicast, no head-of-line
  coupling; latency ``hop_cycles * h(P)``): per image, its spikes then an update pass of C cycles;
  the accumulate phase ends when the unit is done (no global-buffer bandwidth term).
* The stream's order is images, then the group's inputs, then (direct image) bit planes 0..7, then
  raster order; a spike with no destination PE in the fold is not in the stream and costs no cycle.
* ``pe_input_buffer_pushes`` counts one delivery per destination PE of a multicast spike; its byte-hops are
  ``sb`` per link of the spike's multicast tree (section 9, hardware model 8), however many PEs it reaches.
* ``S_in`` counts every spike of the group's input maps over the batch (each is read once and
  multicast), whether or not a PE of the fold needs it; for a direct image at t = 1 the term is
  ``b * C * H * W`` bytes (1 byte per pixel per image).
* The initial weight load (section 8): at cycle 0 each accelerator that will get work (index <
  ceil(images / images_per_batch)) reads all weight bytes, and takes its first batch when the load
  completes; the others stay off (no load, no batch); ``start_cycle`` is the cycle a batch is taken.
* A fold's weight bytes are its channels' int8 weights and, per channel, a bias word and (if it fires) a
  threshold word of ceil(pe.vmem_bits / 8) bytes; the exit unit's, a bias per class of
  ceil(exit_unit.vmem_bits / 8) bytes (section 3, hardware model 10).
* A fold's weight fetch (not resident) is one DRAM read per ``global_buffers.weight.bytes`` (the last
  of the rest), read ahead into the weight buffer's banks while earlier buffer-fulls stream (section 4,
  phase 1): a bank is asked for again when its stream ends. A PE group whose inputs are all the
  direct-encoded image needs its weights and biases only for the bit planes at t = 1 (section 5): a step
  with no item at t = 1 reads and streams its threshold words alone (``_Group.needs_weights``);
  layer_major streams every fold once, before its t = 1.
* A spilled spike map is read back with one DRAM read by every group consuming it (PE, max-pool
  or exit group), before that group's first phase at the same timestep.
* Membrane fill/spill bytes are ``ceil(b * n_f * vmem_bits / 8)``, one transaction at
  ``min(dram.bytes_per_cycle, noc.link_bytes_per_cycle)`` (hardware model 7); it adds
  ``ceil(b * vmem_bits * sum_p n_p h(p) / 8)`` byte-hops and one data-memory write (fill) or read
  (spill) per membrane.
* Decision actions per image: ``at``: C + 1 compares, 2C + 1 multiplies, 2C LUT reads; ``dt``:
  C + 1 compares, 4C LUT reads, 4C multiplies (the 2C exp and 2C log cycles each read the LUT and
  multiply), 1 divide.
* Section 11: batch refill keeps b slots of (image, t) and refills free ones, lowest slot first, at the
  step's end (``_run_refill``); layer_major runs group by group, per fold all T timesteps (``_layer_major``);
  the batch-capacity rules are written out in ``_check_batch``.
* Global-buffer bytes: weight writes = weight bytes read from DRAM; weight reads = streamed
  bytes; spike reads = the compute-duration input term, max-pool inputs and exit-unit inputs;
  spike writes = PE output spikes and pooled spikes. Spills and refills move DRAM bytes only.
* Without an exit tile (``array.exit_unit_tiles: 0``) the output layer is a PE group like any
  other whose fire pass is an update pass that never spikes; with no exit unit phase, an image
  finishes when the last group of its last timestep ends (section 11).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from satasim_atsn.errors import MappingError, counted
from satasim_atsn.hw.arch import require_arch_and_workload
from satasim_atsn.hw.energy import ACTIONS  # the counter names only (no timing)
from satasim_atsn.snn.exit_policies import keeps_running_sum
from satasim_atsn.traces.functional import functional_trace
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.trace import Trace

if TYPE_CHECKING:
    from satasim_atsn.hw.arch import Arch

BUSY, STALL_INPUT, STALL_OUTPUT = 0, 1, 2
PROGRESS_CYCLES = 1 << 16  # how often simulate_reference's on_cycles hears of the cycle reached

# The exit decision per exit-unit kind, written out here from docs/microarchitecture.md section 3
# (not taken from hw/exit_units.py: this model is the engine's witness). kind -> None (never decides)
# or eu, classes -> (cycles per image, actions per image).
DECIDE = {
    "at": lambda eu, C: (3 * C + 1, {"exit_compares": C + 1, "exit_multiplies": 2 * C + 1, "exit_lut_reads": 2 * C,
                                     "exit_decision_adds": 2 * C}),
    "dt": lambda eu, C: (5 * C + int(eu.divider_cycles) + 1, {"exit_compares": C + 1, "exit_multiplies": 4 * C,
                                                              "exit_lut_reads": 4 * C, "exit_divides": 1,
                                                              "exit_decision_adds": 2 * C}),
    "none": None,
}


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _multicast_links(pes, cols: int) -> int:
    """Section 9: the links a multicast from tile (0, 0) occupies: the union of the XY routes to its PEs, each
    along row 0 to the PE's column, then down that column to its row (PE p is tile (p // cols, p % cols))."""
    links = set()
    for p in pes:
        row, col = divmod(int(p), cols)
        links.update(("across", j) for j in range(col))
        links.update(("down", col, i) for i in range(row))
    return len(links)


# ---------------------------------------------------------------------------------------------
# one unit (a PE, or the exit unit) in one compute phase: section 4.1, cycle by cycle
# ---------------------------------------------------------------------------------------------
class _Unit:
    """Per-cycle state of one PE (or the exit unit) during one compute/accumulate phase."""

    __slots__ = (
        "a_cycles", "cov", "image_end", "fire_spikes", "fire_cycles", "n_images", "latency", "cap_in",
        "cap_out", "r", "delivered", "popped", "acc_left", "in_fire", "neuron", "fire_left", "image",
        "out_count", "done", "done_cycle", "busy", "stall_input", "stall_output", "idle", "accumulations",
        "updates", "out_pushes", "in_pushes", "weighted", "weight_reads",
    )

    def __init__(self, a_cycles, cov, image_end, fire_spikes, fire_cycles, latency, cap_in, cap_out, r,
                 weighted=None) -> None:
        self.a_cycles = a_cycles  # per delivered spike, in delivery order
        self.cov = cov
        self.weighted = weighted  # per delivered spike: does each of its accumulations read a weight (PEs only)
        self.weight_reads = 0
        self.image_end = image_end  # image i's spikes are [image_end[i-1], image_end[i])
        self.fire_spikes = fire_spikes  # per image: the block's functional spikes (0/1), neuron order
        self.fire_cycles = fire_cycles
        self.n_images = len(fire_spikes)
        self.latency = latency
        self.cap_in = cap_in
        self.cap_out = cap_out
        self.r = r
        self.delivered = self.popped = self.acc_left = 0
        self.in_fire = False
        self.neuron = self.fire_left = self.image = self.out_count = 0
        self.busy = self.stall_input = self.stall_output = self.idle = 0
        self.accumulations = self.updates = self.out_pushes = self.in_pushes = 0
        # a unit holding no neurons gets no spikes: its fire passes are empty, it is done before cycle 0
        self.done = len(fire_spikes) == 0 or len(fire_spikes[0]) == 0
        self.done_cycle = 0

    def _fire(self) -> None:
        """One cycle of the fire (update) pass."""
        spikes = self.fire_spikes[self.image]
        if self.fire_left == 0:
            if spikes[self.neuron] and self.out_count >= self.cap_out:
                self.stall_output += 1
                return
            self.fire_left = self.fire_cycles
        self.busy += 1
        self.fire_left -= 1
        if self.fire_left == 0:
            self.updates += 1
            if spikes[self.neuron]:
                self.out_count += 1
                self.out_pushes += 1
            self.neuron += 1
            if self.neuron == len(spikes):
                self.in_fire = False
                self.neuron = 0
                self.image += 1
                if self.image == self.n_images:
                    self.done = True

    @property
    def room(self) -> int:
        """Free entries of the input buffer (delivered and not yet popped spikes occupy it)."""
        return self.cap_in - (self.delivered - self.popped)

    def push(self) -> None:
        """One spike delivered into the input buffer."""
        self.delivered += 1
        self.in_pushes += 1

    def act(self) -> None:
        """Step 1 of a cycle: the unit acts on the state at the start of the cycle."""
        if self.done:
            self.idle += 1
        elif self.acc_left > 0:
            self.busy += 1
            self.acc_left -= 1
        elif self.in_fire:
            self._fire()
        elif self.popped < self.image_end[self.image]:
            if self.delivered > self.popped:
                self.busy += 1
                self.acc_left = self.a_cycles[self.popped] - 1
                self.accumulations += self.cov[self.popped]
                if self.weighted is not None and self.weighted[self.popped]:
                    self.weight_reads += self.cov[self.popped]  # section 3: one weight byte per accumulation
                self.popped += 1
            else:
                self.stall_input += 1
        else:
            self.in_fire = True
            self.neuron = 0
            self.fire_left = 0
            self._fire()

    def own_link(self, k: int) -> None:
        """Step 2 for a unit with its own link (the exit unit, clarification 3): up to r spikes, room permitting."""
        total = len(self.a_cycles)
        if k >= self.latency and self.delivered < total:
            for _ in range(min(self.r, self.room, total - self.delivered)):
                self.push()

    def drain(self, k: int) -> None:
        """Step 3: the output buffer drains up to r spikes; record the cycle the unit is finished."""
        if self.out_count:
            self.out_count -= min(self.r, self.out_count)
        if self.done and self.out_count == 0 and self.done_cycle == 0:
            self.done_cycle = k + 1

    def step(self, k: int) -> None:
        """Cycle k of a unit with its own link: 1. act, 2. the link delivers, 3. the output buffer drains."""
        self.act()
        self.own_link(k)
        self.drain(k)

    @property
    def finished(self) -> bool:
        """Done and its output buffer empty."""
        return self.done and self.out_count == 0


class _Stream:
    """The fold's single multicast input stream (section 4.1): from cycle L, at most r spikes per cycle, in order;
    a spike goes only when every destination PE has room, else it and every later spike wait (head-of-line)."""

    __slots__ = ("dests", "latency", "r", "next", "blocked")

    def __init__(self, dests: list[tuple[int, ...]], latency: int, r: int) -> None:
        self.dests = dests  # per stream spike, in delivery order: the indices of its destination PEs (>= 1)
        self.latency = latency
        self.r = r
        self.next = 0  # the first spike not yet delivered
        self.blocked = 0  # cycles (k >= L, spikes left) in which the head spike found a full buffer

    def deliver(self, k: int, units: list[_Unit]) -> None:
        """Step 2 of cycle k: up to r times, push the head spike into all its destinations if all have room."""
        if k < self.latency:
            return
        for _ in range(self.r):
            if self.next >= len(self.dests):
                return
            dest = self.dests[self.next]
            if any(units[p].room < 1 for p in dest):
                self.blocked += 1
                return
            for p in dest:
                units[p].push()
            self.next += 1


# ---------------------------------------------------------------------------------------------
# the mapping (sections 2-3), derived here from the document's text: groups, folds, PE blocks,
# weight bytes and shares, residency. Plain loops over neurons; nothing is shared with hw/mapping.py.
# ---------------------------------------------------------------------------------------------
@dataclass
class _Input:
    """One spike map a group consumes (section 2) and how it reaches the group's neurons (section 4.1)."""

    source: str  # the layer whose spike map is delivered, through flatten/avgpool remaps ("input": the image)
    encoding: str  # spikes | image (direct uint8 image) | frames (spike-frame input)
    coverage: str  # conv | linear | identity | pool
    shape: tuple[int, ...]
    kernel: int = 1
    stride: int = 1
    padding: int = 0


@dataclass
class _Fold:
    """Neurons [start, stop) of a group; PE p holds [pe_offsets[p], pe_offsets[p+1])."""

    index: int
    start: int
    stop: int
    pe_offsets: list[int]
    weight_bytes: int  # W_f: the weights, biases and thresholds of the output channels (neurons) in the fold
    pe_weight_bytes: list[int]  # what each PE writes into its weight memory
    weight_byte_hops: int = 0  # each channel's weights multicast to the PEs holding its neurons (section 9)
    threshold_bytes: int = 0  # the same channels' threshold words alone (section 5: an image-only group at t > 1)
    pe_threshold_bytes: list[int] = field(default_factory=list)
    threshold_byte_hops: int = 0

    @property
    def n(self) -> int:
        return self.stop - self.start


@dataclass
class _Group:
    index: int
    kind: str  # pe | pool | exit
    name: str
    out_shape: tuple[int, ...]
    inputs: list[_Input]
    folds: list[_Fold] = field(default_factory=list)
    weight_bytes: int = 0
    spiking: bool = True  # False: the output layer on the PEs (no exit tile, section 11): updates, never fires
    words: int = 1  # data-memory words per neuron and image: a group reading the image keeps its current too

    def needs_weights(self, items: list[tuple[int, int]]) -> bool:
        """Section 5: a PE group whose every input is the direct-encoded image reads its weights only at t = 1
        (its bit planes); at t > 1 it only fires, so a step with no item at t = 1 fetches and streams only its
        thresholds (``_Fold.threshold_bytes``), not its weights or biases."""
        reads_image_only = all(inp.encoding == "image" for inp in self.inputs)
        return self.kind != "pe" or not reads_image_only or any(t == 1 for _, t in items)


@dataclass
class _Mapping:
    groups: list[_Group]
    membranes_resident: bool
    weights_resident: bool
    total_weight_bytes: int


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _fan_in(layer: dict) -> int:
    """int8 weight bytes of one output channel (conv: C_in*k*k) or one neuron (linear/output: in features)."""
    if layer["type"] == "conv":
        return int(layer["in_shape"][0]) * int(layer["kernel"]) ** 2
    return _prod(layer["in_shape"])


def _word(vmem_bits) -> int:
    """Bytes of one bias or threshold word: ceil(vmem_bits / 8) (section 3)."""
    return _ceil_div(int(vmem_bits), 8)


def _stored_bytes(arch, layer: dict) -> int:
    """Section 3: what one output channel (neuron) of a layer keeps beside its weights: a spiking conv/linear layer
    a bias and a threshold word, the output layer one bias (exit unit: exit_unit.vmem_bits wide; on the PEs:
    pe.vmem_bits), a non-spiking conv of an add group nothing (its add keeps the channel's summed bias and its
    threshold)."""
    kind = layer["type"]
    if kind == "output":
        return _word(arch.exit_unit.vmem_bits if int(arch.array.exit_unit_tiles) else arch.pe.vmem_bits)
    if kind == "add":
        return 2 * _word(arch.pe.vmem_bits)
    if kind in ("conv", "linear") and layer.get("spiking", True):
        return 2 * _word(arch.pe.vmem_bits)
    return 0


def _fold_layout(N: int, P: int, Q: int) -> list[tuple[int, int, list[int]]]:
    """Folds of P*Q neurons; in each, PE p holds the contiguous block of q_f = ceil(n_f / P) neurons."""
    out = []
    start = 0
    while start < N:
        stop = min(N, start + P * Q)
        n = stop - start
        q = _ceil_div(n, P)
        out.append((start, stop, [start + min(p * q, n) for p in range(P + 1)]))
        start = stop
    return out


def _channels(lo: int, hi: int, per_channel: int) -> int:
    """Distinct output channels among neurons [lo, hi) (flat (c, y, x) order)."""
    return len({j // per_channel for j in range(lo, hi)})


def _total_weight_bytes(arch, layers: list[dict]) -> int:
    """Section 3's weight residency: every weighted layer's int8 weights and every channel's stored words."""
    weighted = ("conv", "linear", "output")
    return sum(_prod(ly["out_shape"][:1]) * ((_fan_in(ly) if ly["type"] in weighted else 0) + _stored_bytes(arch, ly))
               for ly in layers)


def _derive_folds(arch, name: str, N: int, K: int, per_channel: int, fan_in: int,
                  too_large: dict[str, int], fires: bool = True) -> list[_Fold]:
    """Section 3: the largest Q <= K for which every PE's weight share fits pe.weight_memory_bytes (none, and the
    layer recorded in ``too_large``, when one neuron's weights do not fit). ``fan_in``: a channel's bytes, weights
    and its bias and threshold words; ``fires``: it has a threshold (not the output layer)."""
    threshold = _word(arch.pe.vmem_bits) if fires else 0
    P = _num_pes(arch)
    memory = int(arch.pe.weight_memory_bytes)
    if fan_in > memory:
        too_large[name] = fan_in
        return []
    # every Q >= ceil(N / P) gives the same single fold, so the search starts at the smaller of K and that
    Q = min(K, _ceil_div(N, P))
    while True:
        layout = _fold_layout(N, P, Q)
        shares = [[_channels(offs[p], offs[p + 1], per_channel) * fan_in for p in range(P)] for _, _, offs in layout]
        if Q == 1 or all(v <= memory for row in shares for v in row):
            break
        Q -= 1
    cols = int(arch.array.cols)
    folds = []
    for f, (lo, hi, offs) in enumerate(layout):
        holders: dict[int, set[int]] = {}  # channel -> the PEs holding one of its neurons
        for p in range(P):
            for j in range(offs[p], offs[p + 1]):
                holders.setdefault(j // per_channel, set()).add(p)
        links = sum(_multicast_links(pes, cols) for pes in holders.values())
        channels = _channels(lo, hi, per_channel)
        held = [_channels(offs[p], offs[p + 1], per_channel) for p in range(P)]
        folds.append(_Fold(f, lo, hi, offs, channels * fan_in, shares[f], fan_in * links, channels * threshold,
                           [c * threshold for c in held], threshold * links))
    return folds


def _refuse_batch(arch, workload: Workload, held: int, b: int) -> None:
    """Section 3: a batch of ``b`` images needs ``b`` membranes per PE, and the PE holds ``held``."""
    words = 2 if workload.input_encoding == "direct" else 1  # a first layer keeps its current too (section 5)
    pe_bytes = _ceil_div(b * words * int(arch.pe.vmem_bits), 8)
    most, also = held // words, ""
    exit_holds = int(arch.array.exit_unit_tiles) and any(ly["type"] == "output" for ly in workload.layers)
    exit_most, exit_need = _exit_unit_room(arch, workload) if exit_holds else (b, 0)  # else no exit membranes
    if exit_most < b:
        most, also = min(most, exit_most), f" and exit_unit.data_memory_bytes to {exit_need}"
    fix = (f"use images_per_batch <= {most} or " if most >= 1 else "") + \
        f"raise pe.data_memory_bytes to {pe_bytes}{also}"
    currents = f" (and the layer reading the image {counted(b, 'current')} beside them)" if words > 1 else ""
    raise MappingError.at(arch.where, "images_per_batch", f"{counted(b, 'image')} need{'s' if b == 1 else ''}"
                          f" {counted(b, 'membrane')} per PE{currents}, and {arch.pe.data_memory_bytes} B of PE"
                          f" data memory hold {counted(held, f'{arch.pe.vmem_bits}-bit membrane')}", fix)


def _current_room(arch, workload: Workload, name: str, inputs: list[_Input], fan_in: int, K: int, held: int,
                  b: int) -> tuple[int, int]:
    """Section 5: (words per neuron, neurons per PE, fold and image) of a group: one that reads the image keeps each
    neuron's constant current beside its membrane (checked once its neuron's weights fit a PE). The fix names the
    exit unit's memory too when it cannot hold the batch either (followed, the PE's alone was refused again)."""
    words = 2 if any(inp.encoding == "image" for inp in inputs) else 1
    if K // words < 1 and fan_in <= int(arch.pe.weight_memory_bytes):
        exit_holds = int(arch.array.exit_unit_tiles) and any(ly["type"] == "output" for ly in workload.layers)
        exit_most, exit_need = _exit_unit_room(arch, workload) if exit_holds else (b, 0)
        also = f" and exit_unit.data_memory_bytes to at least {exit_need}" if exit_most < b else ""
        raise MappingError.at(
            arch.where, "pe.data_memory_bytes",
            f"{arch.pe.data_memory_bytes} B hold {held} {arch.pe.vmem_bits}-bit word(s) per PE, and layer {name!r}"
            f" reads the image: each of its neurons keeps its membrane and its constant current ({words} words) "
            f"for each of the {b} image(s) of a batch",
            f"raise pe.data_memory_bytes to at least {_ceil_div(words * b * int(arch.pe.vmem_bits), 8)}{also}"
            + (" or lower images_per_batch" if b > 1 else ""))
    return words, K // words


def _refuse_before_groups(arch, workload: Workload, held: int, b: int) -> None:
    """What refuses a network before its groups: a batch no PE holds (section 3), then an exit rule that decides (at,
    dt) on a network without the output layer it reads (section 11, rule 7)."""
    if held // b < 1:
        _refuse_batch(arch, workload, held, b)
    kind = arch.exit_unit.kind
    if kind in ("at", "dt") and not any(ly["type"] == "output" for ly in workload.layers):
        last = workload.layers[-1]["name"]
        raise MappingError.at(arch.where, "exit_unit.kind", f"the {kind} exit rule needs an output layer, but "
                              f"{workload.source} ends in the spiking layer {last!r} (its spike counts are the "
                              "output, fixed T)", "use a fixed-T architecture (kind: conventional, exit_unit.kind: "
                              "none) or add an output layer")


def _refuse_image_at_exit_unit(arch: Arch, workload: Workload, group: _Group) -> None:
    """Section 11: the exit unit has no pixel datapath, so an output layer reading the image is refused (the fix: a
    fixed-T design without an exit tile; an exit-unit design cannot drop its tile alone)."""
    if group.inputs[0].encoding == "image":
        fix = ("add a layer before it, or run it without an exit tile (--set array.exit_unit_tiles=0), where the PEs "
               "compute it" if arch.exit_unit.kind == "none" else
               "add a layer before it, or run it on a fixed-T design without an exit tile, where the PEs compute it "
               "(e.g. archs/conventional16x16.yaml with --set array.exit_unit_tiles=0)")
        raise MappingError.at(workload.source, "layers", "the output layer reads the image, and the exit unit cannot "
                              "read pixels", fix)


def _num_pes(arch) -> int:
    return int(arch.array.rows) * int(arch.array.cols) - int(arch.array.exit_unit_tiles)


def derive_mapping(arch: Arch, workload: Workload) -> _Mapping:
    """Groups (section 2), folds and PE blocks, weight bytes and residency (section 3) of ``workload`` on ``arch``."""
    layers = workload.layers
    by_name = {ly["name"]: ly for ly in layers}

    def resolve(name: str) -> str:
        while name != "input" and by_name[name]["type"] in ("flatten", "avgpool"):
            name = by_name[name]["inputs"][0]
        return name

    def spike_map(src: str, coverage: str, consumer: dict | None = None) -> _Input:
        source = resolve(src)
        shape = tuple(int(v) for v in (workload.input_shape if source == "input" else by_name[source]["out_shape"]))
        encoding = "spikes" if source != "input" else (
            "image" if workload.input_encoding == "direct" and coverage != "identity" else "frames")
        if coverage == "conv":
            return _Input(source, encoding, coverage, shape, int(consumer["kernel"]), int(consumer["stride"]),
                          int(consumer["padding"]))
        return _Input(source, encoding, coverage, shape)

    def consumed(layer: dict) -> _Input:  # the input of a conv/linear/output layer
        return spike_map(layer["inputs"][0], "conv" if layer["type"] == "conv" else "linear", layer)

    # section 3: a fold's PE holds the membranes of every image of a batch, so one image gets K // b of them
    b = int(arch.images_per_batch)
    held = int(arch.pe.data_memory_bytes) * 8 // int(arch.pe.vmem_bits)  # membranes one PE holds
    K = held // b
    _refuse_before_groups(arch, workload, held, b)
    groups: list[_Group] = []
    too_large: dict[str, int] = {}  # layers one of whose neurons outgrows a PE's weight memory

    def room(name: str, inputs: list[_Input], fan_in: int) -> tuple[int, int]:
        return _current_room(arch, workload, name, inputs, fan_in, K, held, b)

    for ly in layers:
        kind, name, out_shape = ly["type"], ly["name"], tuple(int(v) for v in ly["out_shape"])
        per_channel = _prod(out_shape[1:])  # neurons per output channel (1 for a flat map)
        if kind in ("conv", "linear") and ly.get("spiking", True):
            g = _Group(len(groups), "pe", name, out_shape, [consumed(ly)])
            fan = _fan_in(ly) + _stored_bytes(arch, ly)
            g.words, k = room(name, g.inputs, fan)
            g.folds = _derive_folds(arch, name, _prod(out_shape), k, per_channel, fan, too_large)
        elif kind == "add":
            main, short = (by_name[v] for v in ly["inputs"])
            convs = [main]
            if short["type"] in ("conv", "linear") and not short.get("spiking", True):
                convs.append(short)
            inputs = [consumed(c) for c in convs]
            if len(convs) == 1:  # identity shortcut: the shortcut's spikes, no weights
                inputs.append(spike_map(short["name"], "identity"))
            g = _Group(len(groups), "pe", name, out_shape, inputs)
            fan = sum(_fan_in(c) for c in convs) + _stored_bytes(arch, ly)  # the add's summed bias and threshold
            g.words, k = room(name, inputs, fan)
            g.folds = _derive_folds(arch, name, _prod(out_shape), k, per_channel, fan, too_large)
        elif kind == "maxpool":
            g = _Group(len(groups), "pool", name, out_shape, [spike_map(ly["inputs"][0], "pool")])
        elif kind == "output" and int(arch.array.exit_unit_tiles) == 0:  # section 11: a PE group like a linear layer
            g = _Group(len(groups), "pe", name, out_shape, [consumed(ly)], spiking=False)
            fan = _fan_in(ly) + _stored_bytes(arch, ly)  # a bias per class, no threshold: it never fires
            g.words, k = room(name, g.inputs, fan)
            g.folds = _derive_folds(arch, name, _prod(out_shape), k, per_channel, fan, too_large, fires=False)
        elif kind == "output":
            g = _Group(len(groups), "exit", name, out_shape, [consumed(ly)],
                       weight_bytes=_prod(out_shape) * (_fan_in(ly) + _stored_bytes(arch, ly)))
            _refuse_image_at_exit_unit(arch, workload, g)
        else:  # flatten, avgpool: address remaps; a non-spiking conv runs inside its add group
            continue
        groups.append(g)
    if too_large:  # the largest need, so that the fix given maps every layer
        need = max(too_large.values())
        raise MappingError.at(getattr(arch, "name", "arch"), "pe.weight_memory_bytes",
                              f"{len(too_large)} layers need up to {need} B for one neuron",
                              f"raise it to at least {need}")
    total = _total_weight_bytes(arch, layers)
    P = _num_pes(arch)
    membranes = b * sum(_ceil_div(_prod(g.out_shape), P) * g.words for g in groups if g.kind == "pe") <= held
    return _Mapping(groups, membranes, total <= int(arch.global_buffers.weight.bytes), total)


# ---------------------------------------------------------------------------------------------
# coverage (section 4.1): how many of a PE's neurons see each input position
# ---------------------------------------------------------------------------------------------
def _coverage(inp: _Input, out_shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    """cov[pos] for every flat position of ``inp``'s source map, for the neurons [lo, hi) of a group."""
    size = int(np.prod(inp.shape))
    cov = np.zeros(size, dtype=np.int64)
    if hi <= lo:
        return cov
    if inp.coverage == "linear":
        cov[:] = hi - lo
    elif inp.coverage == "identity":
        cov[lo:hi] = 1
    elif inp.coverage == "conv":
        cin, h, w = (int(v) for v in inp.shape)
        _, ho, wo = (int(v) for v in out_shape)
        cov2d = np.zeros((h, w), dtype=np.int64)
        k, s, pad = inp.kernel, inp.stride, inp.padding
        for j in range(lo, hi):
            oy, ox = (j % (ho * wo)) // wo, j % wo
            for dy in range(k):
                iy = oy * s - pad + dy
                if not 0 <= iy < h:
                    continue
                for dx in range(k):
                    ix = ox * s - pad + dx
                    if 0 <= ix < w:
                        cov2d[iy, ix] += 1
        cov = np.broadcast_to(cov2d, (cin, h, w)).reshape(-1).copy()
    else:  # pragma: no cover - pool inputs never reach a PE
        raise ValueError(inp.coverage)
    return cov


class _Static:
    """Per-run static data: the mapping, the trace and the coverage tables of every fold and PE."""

    def __init__(self, arch, workload: Workload, mapping: _Mapping, trace: Trace) -> None:
        self.arch = arch
        self.mapping = mapping
        self.trace = trace
        self.T = workload.timesteps
        self.output_mode = workload.layers[-1].get("output_mode", "")
        self.C = workload.num_classes
        rows, cols = int(arch.array.rows), int(arch.array.cols)
        self.rows, self.cols = rows, cols
        self.P = rows * cols - int(arch.array.exit_unit_tiles)
        self.sb = int(arch.spike_address_bytes)
        self.r = int(arch.noc.link_bytes_per_cycle) // self.sb
        self.hops = [p // cols + p % cols for p in range(self.P)]
        self.exit_hops = self.P // cols + self.P % cols
        self.hop_cycles = int(arch.noc.hop_cycles)
        self.cap_in = int(arch.pe.input_spike_buffer_bytes) // self.sb
        self.cap_out = int(arch.pe.output_spike_buffer_bytes) // self.sb
        self.exit_cap_in = int(arch.exit_unit.input_spike_buffer_bytes) // self.sb
        self.exit_cap_out = int(arch.exit_unit.output_spike_buffer_bytes) // self.sb
        self.adders = int(arch.pe.adders)
        self.exit_adders = int(arch.exit_unit.adders)
        self.exit_tiles = int(arch.array.exit_unit_tiles)  # 0: no exit unit; the output layer is a PE group
        self.analog = getattr(arch.pe, "accumulation", "digital") == "analog"
        self.fire_cycles = int(arch.pe.adc_cycles_per_conversion) if self.analog else 1
        self.vmem_bits = int(arch.pe.vmem_bits)
        self.capacity = int(arch.pe.data_memory_bytes) * 8 // self.vmem_bits  # K: membranes a PE holds
        if self.r < 1 or min(self.cap_in, self.cap_out, self.exit_cap_in if self.exit_tiles else 1) < 1:
            raise MappingError.at(
                getattr(arch, "name", "arch"), "spike_address_bytes", "links or buffers hold no spike", "widen them"
            )
        # coverage per group, fold, PE, input (only the positions a PE receives matter)
        self.cov: dict[tuple[int, int], list[list[np.ndarray]]] = {}
        for g in mapping.groups:
            if g.kind != "pe":
                continue
            for f in g.folds:
                per_pe = []
                for p in range(self.P):
                    lo, hi = int(f.pe_offsets[p]), int(f.pe_offsets[p + 1])
                    per_pe.append([_coverage(inp, g.out_shape, lo, hi) for inp in g.inputs])
                self.cov[(g.index, f.index)] = per_pe
        self.consumers: dict[str, list[int]] = {}
        for g in mapping.groups:
            for inp in g.inputs:
                self.consumers.setdefault(inp.source, [])
                if g.index not in self.consumers[inp.source]:
                    self.consumers[inp.source].append(g.index)

    def input_events(self, inp: _Input, image: int, t: int) -> list[np.ndarray]:
        """The spike 'planes' of one input for one image at t, each a flat 0/1 array in raster order."""
        if inp.encoding == "image":
            if t > 1:
                return []
            pix = self.trace.inputs[image].reshape(-1).astype(np.int64)
            return [(pix >> bit) & 1 for bit in range(8)]
        if inp.encoding == "frames":
            return [self.trace.inputs[image, t - 1].reshape(-1).astype(np.int64)]
        return [self.trace.spikes[inp.source][image, t - 1].reshape(-1).astype(np.int64)]

    def input_spike_count(self, inp: _Input, image: int, t: int) -> int:
        """Spikes of one input map for one image at t (pixels are not spikes)."""
        if inp.encoding == "image":
            return 0
        return int(sum(int(e.sum()) for e in self.input_events(inp, image, t)))

    def group_spikes(self, g: _Group, image: int, t: int) -> np.ndarray:
        """The group's functional output spikes (flat, 0/1) for one image at t (none for the output layer)."""
        if not g.spiking:  # the output layer on the PEs: an update pass that never fires
            return np.zeros(_prod(g.out_shape), dtype=np.int64)
        return self.trace.spikes[g.name][image, t - 1].reshape(-1).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# the shared DRAM channel
# ---------------------------------------------------------------------------------------------
class _Txn:
    __slots__ = ("acc", "request", "duration", "done", "later")

    def __init__(self, acc: int, request: int, duration: int, later: bool) -> None:
        self.acc, self.request, self.duration, self.later = acc, request, duration, later
        self.done: int | None = None


class _Dram:
    """One transaction at a time; FIFO by request cycle, ties to the lowest accelerator index, then the order
    asked. demand_first: a weight read ahead waits while any transaction that an accelerator waits for waits,
    until its own accelerator waits for it."""

    def __init__(self, latency_cycles: int, bytes_per_cycle: int, demand_first: bool) -> None:
        self.latency = latency_cycles
        self.bpc = bytes_per_cycle
        self.demand_first = demand_first
        self.queue: list[_Txn] = []
        self.busy_until = 0
        self.busy_cycles = 0  # cycles a transaction occupies the channel (section 9's dram_busy_cycles)

    def request(self, acc: int, now: int, nbytes: int, ahead: bool = False, bytes_per_cycle: int = 0) -> _Txn:
        """Queue a transaction of ``nbytes`` at the channel's rate, or at ``bytes_per_cycle`` if given."""
        rate = bytes_per_cycle or self.bpc
        txn = _Txn(acc, now, self.latency + _ceil_div(nbytes, rate), ahead and self.demand_first)
        self.queue.append(txn)
        return txn

    def serve(self, now: int) -> None:
        """End of cycle ``now``: if the channel is free, start the oldest request."""
        if self.busy_until <= now and self.queue:
            txn = min(self.queue, key=lambda x: (x.later, x.request, x.acc))
            self.queue.remove(txn)
            txn.done = now + txn.duration
            self.busy_until = txn.done
        if self.busy_until > now:  # the next cycle, now + 1, is one of the running transaction's
            self.busy_cycles += 1


# ---------------------------------------------------------------------------------------------
# one accelerator: a controller generator that yields once per cycle
# ---------------------------------------------------------------------------------------------
class _Accelerator:
    def __init__(self, index: int, sim: _Reference) -> None:
        self.index = index
        self.sim = sim
        st = sim.static
        self.st = st
        P = st.P
        self.busy = [0] * P
        self.stall_input = [0] * P
        self.stall_output = [0] * P
        self.idle = [0] * P
        self.stall_memory = 0  # every PE stalls on memory together
        self.all_idle = 0  # cycles in which every PE is idle (exit-unit phases)
        self.exit_busy = 0
        self.exit_stall_input = 0
        self.actions = dict.fromkeys(ACTIONS, 0)
        self.finish = 0

    # --- phases -------------------------------------------------------------------------------
    def _dram(self, nbytes: int, write: bool, bytes_per_cycle: int = 0):
        """Request one DRAM transaction (at ``bytes_per_cycle`` if given) and stall (memory) until it completes."""
        if nbytes <= 0:
            return
        self.actions["dram_write_bytes" if write else "dram_read_bytes"] += nbytes
        txn = self.sim.dram.request(self.index, self.sim.now, nbytes, bytes_per_cycle=bytes_per_cycle)
        while txn.done is None or txn.done > self.sim.now:
            self.stall_memory += 1
            yield

    def _memory_cycles(self, cycles: int):
        for _ in range(cycles):
            self.stall_memory += 1
            yield

    def _pass_chunks(self, items: list[tuple[int, int]]) -> list[int]:
        """The weight-buffer-fulls one pass over the groups for ``items`` reads from DRAM, in order (section 4,
        phase 1): a group reading only the image has none when no item is at t = 1 (section 5)."""
        st = self.st
        if st.mapping.weights_resident:
            return []
        capacity = int(st.arch.global_buffers.weight.bytes)
        sizes = []
        for g in st.mapping.groups:
            if g.kind == "pe":  # a group reading only the image: its thresholds alone when no item is at t = 1
                full = g.needs_weights(items)
                sizes += [int(f.weight_bytes if full else f.threshold_bytes) for f in g.folds]
            elif g.kind == "exit":
                sizes.append(int(g.weight_bytes))
        return [min(capacity, w - first) for w in sizes for first in range(0, w, capacity)]

    def _begin_pass(self, items: list[tuple[int, int]]) -> None:
        """Every weight bank is free at a pass's start: request the first ``banks`` buffer-fulls now."""
        self.chunks = self._pass_chunks(items)
        self.inflight: list[tuple[int, _Txn]] = []
        for _ in range(int(self.st.arch.global_buffers.weight.banks)):
            self._prefetch()

    def _prefetch(self) -> None:
        """A bank is free: request the pass's next buffer-full into it, without waiting."""
        if self.chunks:
            part = self.chunks.pop(0)
            self.actions["dram_read_bytes"] += part
            self.inflight.append((part, self.sim.dram.request(self.index, self.sim.now, part, ahead=True)))

    def _weights(self, g: _Group, weight_bytes: int, fold: _Fold | None = None, thresholds_only: bool = False):
        """Weight fetch (not resident) then weight stream, one weight-buffer-full at a time: wait for the
        buffer-full's read, stream it, and request the pass's next one into the freed bank.

        ``fold``: the PE fold whose PEs write their shares; None for the output layer's weights, which the exit
        unit writes into its data memory (section 7, phase 1). ``thresholds_only``: the fold's threshold words
        alone (section 5)."""
        st = self.st
        # the multicast enters the mesh over one link (docs/microarchitecture.md section 4, phase 2)
        per_cycle = min(int(st.arch.global_buffers.weight.bytes_per_cycle), int(st.arch.noc.link_bytes_per_cycle))
        self.actions["weight_glb_read_bytes"] += weight_bytes
        # section 9: each channel's bytes occupy the links of its multicast tree; the output layer's go to the exit
        # unit's tile alone
        if fold is None:
            self.actions["exit_weight_write_bytes"] += weight_bytes
            self.actions["noc_byte_hops"] += weight_bytes * st.exit_hops
        elif thresholds_only:
            self.actions["pe_weight_write_bytes"] += sum(fold.pe_threshold_bytes)
            self.actions["noc_byte_hops"] += fold.threshold_byte_hops
        else:
            self.actions["pe_weight_write_bytes"] += sum(fold.pe_weight_bytes)  # each PE stores its share
            self.actions["noc_byte_hops"] += fold.weight_byte_hops
        if st.mapping.weights_resident:
            yield from self._memory_cycles(_ceil_div(weight_bytes, per_cycle))
            return
        left = weight_bytes
        while left > 0:
            part, txn = self.inflight.pop(0)
            assert part == min(left, int(st.arch.global_buffers.weight.bytes)), "reference: weight reads out of order"
            txn.later = False  # the controller now waits for it: no longer behind the others (demand_first)
            while txn.done is None or txn.done > self.sim.now:
                self.stall_memory += 1
                yield
            self.actions["weight_glb_write_bytes"] += part
            yield from self._memory_cycles(_ceil_div(part, per_cycle))
            self._prefetch()
            left -= part

    def _refill(self, g: _Group, spilled: dict[str, int]):
        """Read back every spilled input map of the group, before its first phase."""
        seen = []
        for inp in g.inputs:
            if inp.source in spilled and inp.source not in seen:
                seen.append(inp.source)
                yield from self._dram(spilled[inp.source], write=False)

    def _compute(self, g: _Group, f: _Fold, items: list[tuple[int, int]]):
        """The compute phase of one fold (section 4.1): every PE and the multicast stream, cycle by cycle.

        ``items``: the (image, t) pairs of the phase in stream order (each image at its own timestep, section 12)."""
        st = self.st
        sb = st.sb
        s_in_bytes = 0
        for inp in g.inputs:
            for i, t in items:
                if inp.encoding == "image":
                    s_in_bytes += int(np.prod(inp.shape)) if t == 1 else 0
                else:
                    s_in_bytes += st.input_spike_count(inp, i, t) * sb
        out_spikes = [st.group_spikes(g, i, t) for i, t in items]
        covs = st.cov[(g.index, f.index)]
        holders = [p for p in range(st.P) if int(f.pe_offsets[p + 1]) > int(f.pe_offsets[p])]
        a_cycles: list[list[int]] = [[] for _ in range(st.P)]
        cov_list: list[list[int]] = [[] for _ in range(st.P)]
        weighted: list[list[bool]] = [[] for _ in range(st.P)]
        image_end: list[list[int]] = [[] for _ in range(st.P)]
        dests: list[tuple[int, ...]] = []
        # the stream: images in order, then the group's inputs in order, then planes k = 0..7 (a direct
        # image, clarification 10), then raster order (c, y, x); a spike with no destination is not in it
        for i, t in items:
            for j, inp in enumerate(g.inputs):
                for plane in st.input_events(inp, i, t):
                    for pos in np.flatnonzero(plane > 0):
                        dest = tuple(p for p in holders if covs[p][j][pos] > 0)
                        if not dest:
                            continue
                        dests.append(dest)
                        for p in dest:
                            c = int(covs[p][j][pos])
                            cov_list[p].append(c)
                            weighted[p].append(inp.coverage != "identity")  # the shortcut gain is no weight
                            a_cycles[p].append(_ceil_div(c, st.adders))
            for p in holders:
                image_end[p].append(len(a_cycles[p]))
        units = []
        for p in range(st.P):
            lo, hi = int(f.pe_offsets[p]), int(f.pe_offsets[p + 1])
            fire = [[int(v) for v in spikes[lo:hi]] for spikes in out_spikes] if hi > lo else []
            # a PE's own link latency is unused: the stream delivers (latency -1 marks that)
            units.append(_Unit(a_cycles[p], cov_list[p], image_end[p], fire, st.fire_cycles, -1, st.cap_in,
                               st.cap_out, st.r, weighted[p]))
        stream = _Stream(dests, st.hop_cycles * (st.rows + st.cols - 2), st.r)
        s_out = sum(int(spikes[f.start:f.stop].sum()) for spikes in out_spikes)
        glb_cycles = max(
            _ceil_div(s_in_bytes, int(st.arch.global_buffers.input.bytes_per_cycle)),
            _ceil_div(s_out * sb, int(st.arch.global_buffers.output.bytes_per_cycle)),
            _ceil_div(s_out, st.r),  # the output spikes converge on the output buffer over one link (model 7)
        )
        k = 0
        while k < glb_cycles or not all(u.finished for u in units):
            for u in units:
                u.act()
            stream.deliver(k, units)
            for u in units:
                u.drain(k)
            k += 1
            yield
        assert stream.next == len(dests), "reference: a stream spike was never delivered"
        # section 9: a delivered spike occupies the links of its multicast tree once, however many PEs it reaches
        self.actions["noc_byte_hops"] += st.sb * sum(_multicast_links(d, st.cols) for d in dests)
        self._account_compute(g, f, items, units, out_spikes)
        self.actions["spike_glb_read_bytes"] += s_in_bytes
        self.actions["spike_glb_write_bytes"] += s_out * sb

    def _account_compute(self, g: _Group, f: _Fold, items: list[tuple[int, int]], units: list[_Unit],
                         out_spikes: list[np.ndarray]) -> None:
        """Add a finished compute phase's PE cycles and actions (section 9) and its emitted spikes."""
        st, sb = self.st, self.st.sb
        act = self.actions
        for p, u in enumerate(units):
            self.busy[p] += u.busy
            self.stall_input[p] += u.stall_input
            self.stall_output[p] += u.stall_output
            self.idle[p] += u.idle
            act["pe_accumulations"] += u.accumulations
            act["pe_fire_updates"] += u.updates
            act["pe_spikes_out"] += u.out_pushes
            act["pe_output_buffer_pushes"] += u.out_pushes
            act["pe_input_buffer_pushes"] += u.in_pushes
            act["pe_dm_reads"] += u.accumulations + u.updates * g.words  # and a first layer's current (section 5)
            act["pe_dm_writes"] += u.accumulations + u.updates
            act["pe_weight_reads"] += u.weight_reads
            if st.analog:
                act["adc_conversions"] += u.updates
            act["noc_byte_hops"] += sb * st.hops[p] * u.out_pushes  # an output spike's own route to the buffer
        for (_, t), spikes in zip(items, out_spikes, strict=True):
            self.sim.pe_output_spikes[g.name][t - 1] += int(spikes[f.start:f.stop].sum())

    def _membranes_move(self, g: _Group, f: _Fold, b: int) -> bool:
        """Whether the fold's membranes go to DRAM between timesteps (sections 3 and 12.3)."""
        st = self.st
        if st.mapping.membranes_resident:
            return False
        if st.arch.dataflow == "layer_major":  # they stay if b images' blocks fit every PE's data memory
            block = max(int(f.pe_offsets[p + 1]) - int(f.pe_offsets[p]) for p in range(st.P))
            return b * block * g.words > st.capacity
        return True

    def _pe_fold(self, g: _Group, f: _Fold, items: list[tuple[int, int]], move: bool):
        """Membrane fill (images with t > 1), compute, membrane spill (images with t < T) of one fold; a group
        reading the image also fills its current at t > 1 and spills it once, after t = 1 (section 5)."""
        st = self.st
        if move:
            yield from self._membranes(f, g.words * sum(1 for _, t in items if t > 1), write=False)
        yield from self._compute(g, f, items)
        if move:
            spills = sum(1 for _, t in items if t < st.T) + (g.words - 1) * sum(1 for _, t in items if t == 1 < st.T)
            yield from self._membranes(f, spills, write=True)

    def _membranes(self, f: _Fold, words: int, write: bool):
        """Membrane fill (or spill if ``write``) of ``words`` words per neuron (one per image's membrane, one per
        first-layer current): every PE's block crosses the mesh from tile (0, 0) through one link (the transaction
        runs at the slower of the DRAM and the link) and is written into (read from) its data memory, one access
        per word."""
        st = self.st
        nbytes = _ceil_div(words * f.n * st.vmem_bits, 8)
        if nbytes <= 0:
            return
        hop_neurons = sum((int(f.pe_offsets[p + 1]) - int(f.pe_offsets[p])) * st.hops[p] for p in range(st.P))
        self.actions["noc_byte_hops"] += _ceil_div(words * st.vmem_bits * hop_neurons, 8)
        self.actions["pe_dm_reads" if write else "pe_dm_writes"] += words * f.n
        rate = min(int(st.arch.dram.bytes_per_cycle), int(st.arch.noc.link_bytes_per_cycle))
        yield from self._dram(nbytes, write, bytes_per_cycle=rate)

    def _spike_spill(self, g: _Group, items: list[tuple[int, int]], spilled: dict[str, int]):
        """The group's output spikes over ``items`` beyond the smaller spike buffer (a ping-pong pair) go to DRAM."""
        st = self.st
        total_out = sum(int(st.group_spikes(g, i, t).sum()) for i, t in items)
        buffers = st.arch.global_buffers
        excess = total_out * st.sb - min(int(buffers.input.bytes), int(buffers.output.bytes))
        if excess > 0:
            yield from self._dram(excess, write=True)
            spilled[g.name] = excess

    def _pe_group(self, g: _Group, items: list[tuple[int, int]], spilled: dict[str, int]):
        """timestep_major: per fold, weights then the fold's slice of every item."""
        yield from self._refill(g, spilled)
        move = not self.st.mapping.membranes_resident
        weights = g.needs_weights(items)  # a group reading only the image: its thresholds alone after t = 1
        for f in g.folds:
            if weights:
                yield from self._weights(g, int(f.weight_bytes), f)
            else:
                yield from self._weights(g, int(f.threshold_bytes), f, thresholds_only=True)
            yield from self._pe_fold(g, f, items, move)
        yield from self._spike_spill(g, items, spilled)

    def _pe_group_layer_major(self, g: _Group, batch: list[int], spilled: dict[str, int]):
        """layer_major (section 12.3): per fold, weights once, then its slices at t = 1..T."""
        st = self.st
        yield from self._refill(g, spilled)
        for f in g.folds:
            yield from self._weights(g, int(f.weight_bytes), f)  # each PE stores its share, once for all T
            move = self._membranes_move(g, f, len(batch))
            for t in range(1, st.T + 1):
                yield from self._pe_fold(g, f, [(i, t) for i in batch], move)
        yield from self._spike_spill(g, [(i, t) for t in range(1, st.T + 1) for i in batch], spilled)

    def _pool_group(self, g: _Group, items: list[tuple[int, int]], spilled: dict[str, int], refill: bool = True):
        st = self.st
        if refill:
            yield from self._refill(g, spilled)
        s_in = sum(st.input_spike_count(inp, i, t) for inp in g.inputs for i, t in items)
        s_out = sum(int(st.group_spikes(g, i, t).sum()) for i, t in items)
        self.actions["pool_ors"] += s_in
        self.actions["spike_glb_read_bytes"] += s_in * st.sb
        self.actions["spike_glb_write_bytes"] += s_out * st.sb
        yield from self._memory_cycles(
            _ceil_div((s_in + s_out) * st.sb, int(st.arch.global_buffers.output.bytes_per_cycle))
        )
        if refill:  # timestep_major / refill step: the pooled map of this step beyond the spike buffer is spilled
            yield from self._spike_spill(g, items, spilled)

    def _exit_group(self, g: _Group, items: list[tuple[int, int]], spilled: dict[str, int], weights: bool = True):
        st = self.st
        C = st.C
        eu = st.arch.exit_unit
        if weights:
            yield from self._refill(g, spilled)
            yield from self._weights(g, int(g.weight_bytes))
        # accumulate + update passes: the exit unit as a PE holding the C output neurons
        a = _ceil_div(C, st.exit_adders)
        a_cycles: list[int] = []
        image_end: list[int] = []
        s_in = 0
        for i, t in items:
            for inp in g.inputs:
                for plane in st.input_events(inp, i, t):
                    n = int(plane.sum())
                    s_in += n
                    a_cycles.extend([a] * n)
            image_end.append(len(a_cycles))
        unit = _Unit(a_cycles, [C] * len(a_cycles), image_end, [[0] * C for _ in items], 1,
                     st.hop_cycles * st.exit_hops, st.exit_cap_in, st.exit_cap_out, st.r)
        k = 0
        while not unit.finished:
            unit.step(k)
            k += 1
            self.all_idle += 1
            yield
        act = self.actions
        self.exit_busy += unit.busy
        self.exit_stall_input += unit.stall_input
        act["exit_accumulations"] += unit.accumulations
        act["exit_updates"] += unit.updates
        if keeps_running_sum(eu.prediction, st.output_mode):  # the prediction's running sum: one add per update
            act["exit_prediction_adds"] += unit.updates
        act["spike_glb_read_bytes"] += s_in * st.sb
        act["noc_byte_hops"] += st.sb * st.exit_hops * unit.in_pushes
        # decide: every image before its last timestep T (at T every image stops)
        deciding = sum(1 for _, t in items if t < st.T)
        if deciding and DECIDE[eu.kind] is not None:
            cycles, per_image = DECIDE[eu.kind](eu, C)
            for name, n in per_image.items():
                act[name] += deciding * n
            for _ in range(deciding * cycles):
                self.exit_busy += 1
                self.all_idle += 1
                yield

    def _step(self, items: list[tuple[int, int]]):
        """timestep_major: every group once for the items (image, t), in group order (sections 2 and 12.2)."""
        spilled: dict[str, int] = {}
        self._begin_pass(items)  # no weight is read ahead across a step: the exit decision ends it
        for g in self.st.mapping.groups:
            if g.kind == "pe":
                yield from self._pe_group(g, items, spilled)
            elif g.kind == "pool":
                yield from self._pool_group(g, items, spilled)
            else:
                yield from self._exit_group(g, items, spilled)

    def _layer_major(self, batch: list[int]):
        """layer_major (section 12.3): group by group, all T timesteps of the batch while a fold's weights stay."""
        st = self.st
        spilled: dict[str, int] = {}
        self._begin_pass([(i, 1) for i in batch])  # every fold streams its weights once, before its t = 1
        for g in st.mapping.groups:
            if g.kind == "pe":
                yield from self._pe_group_layer_major(g, batch, spilled)
            elif g.kind == "pool":
                yield from self._refill(g, spilled)
                for t in range(1, st.T + 1):
                    yield from self._pool_group(g, [(i, t) for i in batch], spilled, refill=False)
                yield from self._spike_spill(g, [(i, t) for t in range(1, st.T + 1) for i in batch], spilled)
            else:
                yield from self._refill(g, spilled)
                yield from self._weights(g, int(g.weight_bytes))
                for t in range(1, st.T + 1):
                    yield from self._exit_group(g, [(i, t) for i in batch], spilled, weights=False)
        for i in batch:
            self.sim.end_cycle[i] = self.sim.now

    # --- the controller -----------------------------------------------------------------------
    def run(self) -> Generator[Any, Any, None]:
        """The controller: take batches while any are left; one yield per cycle."""
        sim, st = self.sim, self.st
        if self.index >= len(sim.batches):  # it would get no batch: it stays off (no load, no batch)
            return
        if st.mapping.weights_resident:
            nbytes = int(st.mapping.total_weight_bytes)
            yield from self._dram(nbytes, write=False)
            self.actions["weight_glb_write_bytes"] += nbytes
        if st.arch.batch_refill and st.arch.dataflow == "timestep_major":
            yield from self._run_refill()
            return
        while True:
            batch = sim.next_batch()
            if batch is None:
                return
            for i in batch:
                sim.start_cycle[i] = sim.now
                sim.accelerator[i] = self.index
            if st.arch.dataflow == "layer_major":
                yield from self._layer_major(batch)
                continue
            for t in range(1, st.T + 1):
                active = [i for i in batch if int(st.trace.exit_t[i]) >= t]
                if not active:
                    break
                yield from self._step([(i, t) for i in active])
                for i in active:
                    if int(st.trace.exit_t[i]) == t:
                        sim.end_cycle[i] = sim.now

    def _run_refill(self):
        """Batch refill (section 12.2): b slots, each image at its own timestep; free slots take the next images."""
        sim, st = self.sim, self.st
        slots: list[list[int] | None] = [None] * int(st.arch.images_per_batch)  # [image, t] or None
        while True:
            for s, slot in enumerate(slots):  # fill free slots, lowest first, from the shared queue
                if slot is None:
                    i = sim.next_image()
                    if i is None:
                        break
                    slots[s] = [i, 1]
                    sim.start_cycle[i] = sim.now
                    sim.accelerator[i] = self.index
            items = [(slot[0], slot[1]) for slot in slots if slot is not None]
            if not items:
                return
            yield from self._step(items)
            for s, slot in enumerate(slots):
                if slot is None:
                    continue
                if int(st.trace.exit_t[slot[0]]) == slot[1]:
                    sim.end_cycle[slot[0]] = sim.now
                    slots[s] = None
                else:
                    slot[1] += 1


class _Reference:
    """The global clock: accelerators in index order, then the DRAM channel, every cycle."""

    def __init__(self, static: _Static, images: int, batch_size: int, accelerators: int) -> None:
        self.static = static
        self.now = 0
        dram = static.arch.dram
        self.dram = _Dram(int(dram.latency_cycles), int(dram.bytes_per_cycle), dram.arbitration == "demand_first")
        self.batches = [list(range(lo, min(images, lo + batch_size))) for lo in range(0, images, batch_size)]
        self.next_index = 0
        self.images = images
        self.next_single = 0
        self.start_cycle = [0] * images
        self.end_cycle = [0] * images
        self.accelerator = [0] * images
        self.pe_output_spikes = {g.name: [0] * static.T for g in static.mapping.groups if g.kind == "pe"}
        self.accs = [_Accelerator(a, self) for a in range(accelerators)]

    def next_image(self) -> int | None:
        """The next image of the shared queue (batch refill), or None."""
        if self.next_single >= self.images:
            return None
        self.next_single += 1
        return self.next_single - 1

    def next_batch(self) -> list[int] | None:
        """The next batch in index order, or None."""
        if self.next_index >= len(self.batches):
            return None
        self.next_index += 1
        return self.batches[self.next_index - 1]

    def run(self, on_cycles: Callable[[int], None] | None = None) -> int:
        """Advance every controller one cycle at a time until all have finished; returns the makespan.
        ``on_cycles(now)`` is told the cycle reached every PROGRESS_CYCLES cycles (a progress bar)."""
        gens = [acc.run() for acc in self.accs]
        alive = [True] * len(gens)
        while True:
            if on_cycles is not None and self.now % PROGRESS_CYCLES == 0:
                on_cycles(self.now)
            for a, gen in enumerate(gens):
                if alive[a]:
                    try:
                        next(gen)
                    except StopIteration:
                        alive[a] = False
                        self.accs[a].finish = self.now
            if not any(alive):
                return self.now
            self.dram.serve(self.now)
            self.now += 1


def _check_exit_memory(arch, mapping: _Mapping, workload: Workload) -> None:
    """Section 7: the exit unit's data memory holds one image's output membranes (and their running sums) beside
    its table, else MappingError naming exit_unit.data_memory_bytes and the bytes a whole batch needs."""
    if not any(g.kind == "exit" for g in mapping.groups):
        return
    eu, b = arch.exit_unit, int(arch.images_per_batch)
    most, need = _exit_unit_room(arch, workload)
    if most < 1:
        table = _exit_unit_table_bytes(eu)
        held = f"hold the {table} B table but not" if table else "cannot hold"
        raise MappingError.at(arch.where, "exit_unit.data_memory_bytes", f"{eu.data_memory_bytes} B {held} one image's "
                              f"{workload.num_classes} output membranes", f"raise it to at least {need}"
                              + (f" (the {b} images of a batch, images_per_batch)" if b > 1 else ""))


def _check_widths(arch, workload: Workload) -> None:
    """The registers must hold the functional result's membranes, whose widths the workload fixes (MappingError
    otherwise): the PEs' the workload's ``quant.vmem_bits``, and an exit tile holding an output layer its
    ``quant.output_vmem_bits`` (32 when absent). Without an exit tile the output layer is a PE group (section 11)."""
    quant = workload.meta["quant"]
    if int(arch.pe.vmem_bits) < int(quant["vmem_bits"]):
        raise MappingError.at(arch.where, "pe.vmem_bits", f"the PEs' {arch.pe.vmem_bits}-bit membranes are narrower "
                              f"than the workload's {quant['vmem_bits']}-bit ones",
                              f"use pe.vmem_bits >= {quant['vmem_bits']}")
    out_bits = int(quant.get("output_vmem_bits", 32))
    held_by_exit_tile = int(arch.array.exit_unit_tiles) > 0 and any(ly["type"] == "output" for ly in workload.layers)
    if held_by_exit_tile and int(arch.exit_unit.vmem_bits) < out_bits:
        raise MappingError.at(arch.where, "exit_unit.vmem_bits", f"the exit unit's {arch.exit_unit.vmem_bits}-bit "
                              f"output membranes are narrower than the workload's {out_bits}-bit ones",
                              f"use exit_unit.vmem_bits >= {out_bits}")


def _check_batch(arch, mapping: _Mapping, workload: Workload) -> None:
    """Section 12.4, written out here: the exit unit holds a batch's output membranes (MappingError otherwise).

    The output membranes take one word per class and image, two with the prediction's running sum
    (section 7); without an exit unit there is nothing to check. A layer_major fold's weights stay in the
    PE weight memories, which section 3 already sized.
    """
    if not any(g.kind == "exit" for g in mapping.groups):
        return
    b = int(arch.images_per_batch)
    eu = arch.exit_unit
    most, need = _exit_unit_room(arch, workload)
    if need > int(eu.data_memory_bytes):
        table = _exit_unit_table_bytes(eu)
        raise MappingError.at(arch.where, "images_per_batch", f"{b} images need {need - table} B of output"
                              f" membranes in the exit unit, its {eu.data_memory_bytes} B hold"
                              f"{f' a {table} B table and' if table else ''} those of {most}",
                              f"use images_per_batch <= {most} or raise exit_unit.data_memory_bytes to {need}")


def _exit_unit_table_bytes(eu) -> int:
    """The AT unit's exp table (entries of exp_frac_bits + 1 bits in whole bytes) or the DT unit's log table, in
    the exit unit's data memory."""
    if eu.kind == "at":
        return int(eu.exp_lut_entries or 0) * ((int(eu.exp_frac_bits) + 8) // 8)
    return int(eu.lut_bytes or 0) if eu.kind == "dt" else 0


def _exit_unit_room(arch, workload: Workload) -> tuple[int, int]:
    """(the most images the exit unit's data memory holds, the bytes images_per_batch needs with the table)."""
    eu = arch.exit_unit
    table = _exit_unit_table_bytes(eu)
    words = 2 if (eu.prediction == "membrane_sum" and workload.layers[-1].get("output_mode") == "membrane") else 1
    per_image = words * workload.num_classes * int(eu.vmem_bits)
    most = (int(eu.data_memory_bytes) - table) * 8 // per_image
    return most, _ceil_div(int(arch.images_per_batch) * per_image, 8) + table


def simulate_reference(arch: Arch, workload: Workload, images: int | None = None, start: int = 0,
                       on_cycles: Callable[[int], None] | None = None) -> dict:
    """Cycle-by-cycle simulation of images [start, start+images); the counters of section 9 (plain ints).
    ``on_cycles`` is called with the cycle reached, every PROGRESS_CYCLES cycles."""
    require_arch_and_workload(arch, workload)
    if images is None:
        images = workload.num_images - start
    mapping = derive_mapping(arch, workload)
    _check_exit_memory(arch, mapping, workload)
    _check_widths(arch, workload)
    trace = functional_trace(workload, arch.exit_policy(), arch.policy_name, start, images,
                             arch.prediction_rule)
    _check_batch(arch, mapping, workload)
    static = _Static(arch, workload, mapping, trace)
    sim = _Reference(static, images, int(arch.images_per_batch), int(arch.accelerators))
    total = sim.run(on_cycles)
    accelerators = []
    for acc in sim.accs:
        P = static.P
        pe_idle = []
        for p in range(P):
            counted = acc.busy[p] + acc.stall_input[p] + acc.stall_output[p] + acc.idle[p]
            counted += acc.stall_memory + acc.all_idle
            assert counted == acc.finish, "reference: a cycle was not accounted for"
            pe_idle.append(acc.idle[p] + acc.all_idle + (total - acc.finish))
        accelerators.append(
            {
                "pe": {
                    "busy": list(acc.busy),
                    "stall_input": list(acc.stall_input),
                    "stall_output": list(acc.stall_output),
                    "stall_memory": [acc.stall_memory] * P,
                    "idle": pe_idle,
                },
                "exit_unit": {
                    "busy": acc.exit_busy,
                    "stall_input": acc.exit_stall_input,
                    "idle": total - acc.exit_busy - acc.exit_stall_input,
                },
                "actions": {name: int(acc.actions[name]) for name in ACTIONS},
            }
        )
    return {
        "total_cycles": int(total),
        "images": {
            "start_cycle": [int(v) for v in sim.start_cycle],
            "end_cycle": [int(v) for v in sim.end_cycle],
            "exit_t": [int(v) for v in trace.exit_t],
            "accelerator": [int(v) for v in sim.accelerator],
        },
        "dram_busy_cycles": int(sim.dram.busy_cycles),
        "accelerators": accelerators,
        "pe_output_spikes": {name: [int(v) for v in counts] for name, counts in sim.pe_output_spikes.items()},
    }


__all__ = ["simulate_reference", "ACTIONS"]
