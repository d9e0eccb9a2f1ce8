"""Layer -> PE tiles (docs/microarchitecture.md sections 2-3): groups, folds, PE blocks, residency.

This is the fast engine's static data (the literal reference derives its own from the same rules, so
that a mapping bug shows up as a disagreement). It holds no timing: only which neurons live where,
what each group consumes, and what fits in which memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from satasim_atsn.errors import MappingError, counted
from satasim_atsn.hw.arch import require_arch_and_workload
from satasim_atsn.hw.kernels import channel_multicast_links
from satasim_atsn.snn.exit_policies import keeps_running_sum
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.schema import is_spiking, weight_shape

if TYPE_CHECKING:
    from satasim_atsn.hw.arch import Arch


@dataclass(frozen=True)
class GroupInput:
    """One spike map a group consumes, with the geometry that decides coverage (section 4.1).

    ``source``: the layer whose spike map is delivered (``"input"`` for the network input), after
    resolving flatten/avgpool remaps; ``encoding``: ``spikes`` (a layer's spike map in the trace),
    ``image`` (direct uint8 image: 8 bit planes at t = 1 only) or ``frames`` (spike-frame input
    at every t); ``coverage``: ``conv`` (receptive fields of ``kernel``/``stride``/``padding``),
    ``linear`` (every neuron) or ``identity`` (the neuron with the same flat index);
    ``shape``: the source map's shape ([C, H, W] or [features]).
    """

    source: str
    encoding: str
    coverage: str
    shape: tuple[int, ...]
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    via: str = ""  # the conv/linear layer whose weights this input drives ("" for identity)

    @property
    def size(self) -> int:
        """Number of positions in the source map."""
        return int(np.prod(self.shape))

    @property
    def spatial(self) -> tuple[int, int]:
        """(H, W) of the source map (1, 1 for flat maps)."""
        if len(self.shape) == 3:
            return int(self.shape[1]), int(self.shape[2])
        return 1, 1


@dataclass(frozen=True)
class Fold:
    """Neurons [start, stop) of a group, spread over the PEs in contiguous blocks of ``q``."""

    index: int
    start: int
    stop: int
    q: int
    pe_offsets: np.ndarray  # [P + 1] absolute neuron offsets: PE p holds [pe_offsets[p], pe_offsets[p+1])
    weight_bytes: int  # the fold's channels' int8 weights and their parameter words (bias, threshold)
    channels: int
    pe_weight_bytes: np.ndarray  # [P] bytes each PE writes into its weight memory (its channels' weights and words)
    weight_byte_hops: int = 0  # the weight stream's NoC byte-hops: each channel's bytes x its multicast tree's links
    # the threshold-only stream of a group reading only the image, at t > 1 (section 5): its channels' threshold words
    threshold_bytes: int = 0
    pe_threshold_bytes: np.ndarray | None = None  # [P] each PE's channels' threshold words
    threshold_byte_hops: int = 0

    @property
    def n(self) -> int:
        """Number of neurons in the fold."""
        return self.stop - self.start

    @property
    def pe_neurons(self) -> np.ndarray:
        """Neurons held by each PE, [P]."""
        return np.diff(self.pe_offsets)


@dataclass
class Group:
    """One compute group (section 2): a PE group (conv/linear/add), a max-pool, or the exit unit."""

    index: int
    kind: str  # 'pe' | 'pool' | 'exit'
    name: str  # the layer whose output the group produces (its spike map in the trace)
    layers: list[str]
    out_shape: tuple[int, ...]
    inputs: list[GroupInput]
    folds: list[Fold] = field(default_factory=list)
    weight_bytes: int = 0  # all weights of the group's layers and their channels' bias and threshold words
    pool_kernel: int = 0
    pool_stride: int = 0
    spiking: bool = True  # False: the output layer on the PEs (an update pass per neuron, no spikes out)

    @property
    def neurons(self) -> int:
        """Neurons of the group (flat (c, y, x) order of its output shape)."""
        return int(np.prod(self.out_shape))

    @property
    def words_per_neuron(self) -> int:
        """PE data-memory words per neuron and image (section 5): a group that reads the direct-encoded image keeps
        its constant current beside the membrane (2); every other group its membrane (1)."""
        return 2 if any(inp.encoding == "image" for inp in self.inputs) else 1

    @property
    def reads_image_only(self) -> bool:
        """A PE group whose every input is the direct-encoded image: it reads its weights for the bit planes at t = 1
        only, and at t > 1 only fires (section 5), so a pass with no image at t = 1 neither fetches nor streams them."""
        return self.kind == "pe" and all(inp.encoding == "image" for inp in self.inputs)


@dataclass
class Mapping:
    """The static mapping of one workload onto one architecture."""

    num_pes: int
    rows: int
    cols: int
    capacity_neurons: int  # K: membranes one PE's data memory holds
    fold_capacity_neurons: int  # K // images_per_batch: one image's membranes per PE and fold (section 3)
    spike_bytes: int
    spikes_per_cycle: int
    pe_hops: np.ndarray  # [P] h(p) = row + col
    exit_hops: int
    groups: list[Group]
    membranes_resident: bool
    weights_resident: bool
    total_weight_bytes: int
    num_classes: int
    timesteps: int
    input_encoding: str
    exit_memory_bytes: int
    has_exit_unit: bool = True  # False: array.exit_unit_tiles = 0
    # DRAM reads of one pass over the weights (each fold's, then the exit unit's), one per weight-buffer-full
    # (section 4, phases 1-2); 0 when the weights are resident. A pass is per batch-timestep (timestep_major)
    # or per batch (layer_major).
    weight_fetch_reads: int = 0
    # ... of a timestep_major pass with no image at t = 1, where a group reading only the image streams only its
    # thresholds (section 5)
    weight_fetch_reads_after_first_step: int = 0

    @property
    def pe_groups(self) -> list[Group]:
        """The groups executed on the PE array."""
        return [g for g in self.groups if g.kind == "pe"]

    @property
    def exit_group(self) -> Group | None:
        """The exit unit's group (the output layer, always last), or None: no exit unit, or no output layer."""
        return self.groups[-1] if self.groups and self.groups[-1].kind == "exit" else None


def _fail(arch, field_name: str, problem: str, fix: str) -> MappingError:
    where = arch.where
    return MappingError.at(where, field_name, problem, fix)


def layer_weight_bytes(layer: dict) -> int:
    """Bytes of a weighted layer's int8 weights (0 for others)."""
    if layer["type"] in ("conv", "linear", "output"):
        return int(np.prod(weight_shape(layer)))
    return 0


def parameter_word_bytes(vmem_bits: int) -> int:
    """Bytes of one bias or threshold word kept beside a channel's weights: a membrane's width, rounded up."""
    return -(-int(vmem_bits) // 8)


def channel_parameter_bytes(arch: Arch, spiking: bool) -> tuple[int, int]:
    """(bias and threshold bytes, threshold bytes) of one output channel (conv) or neuron (linear) of a PE group
    (section 3): one bias word, and a threshold word if it fires, each ceil(pe.vmem_bits / 8) bytes."""
    word = parameter_word_bytes(arch.pe.vmem_bits)
    threshold = word if spiking else 0
    return word + threshold, threshold


def _resolve_source(layers_by_name: dict[str, dict], name: str) -> str:
    """Follow flatten/avgpool remaps back to the layer whose spike map is delivered."""
    while name != "input" and layers_by_name[name]["type"] in ("flatten", "avgpool"):
        name = layers_by_name[name]["inputs"][0]
    return name


def _input_for(layers_by_name: dict[str, dict], src: str, consumer: dict, encoding: str, input_shape) -> GroupInput:
    """The GroupInput of spike map ``src`` consumed by conv/linear/output layer ``consumer``."""
    source = _resolve_source(layers_by_name, src)
    shape = tuple(int(v) for v in (input_shape if source == "input" else layers_by_name[source]["out_shape"]))
    enc = "spikes" if source != "input" else ("image" if encoding == "direct" else "frames")
    if consumer["type"] == "conv":
        return GroupInput(
            source,
            enc,
            "conv",
            shape,
            int(consumer["kernel"]),
            int(consumer["stride"]),
            int(consumer["padding"]),
            consumer["name"],
        )
    return GroupInput(source, enc, "linear", shape, via=consumer["name"])


def multicast_links(destinations: np.ndarray, cols: int) -> np.ndarray:
    """Links of the XY multicast tree from tile (0, 0) to the destination PEs of each of X items (section 9).

    ``destinations``: [P, X] booleans, PE p (tile row p // cols, column p % cols) a destination of item x. A
    route runs along row 0 to the destination's column, then down it; the union of the routes of a set of
    tiles uses ``max column + sum over its columns of the deepest row there`` links (a single tile: h(p))."""
    P, X = destinations.shape
    rows = -(-P // cols)
    grid = np.zeros((rows * cols, X), dtype=bool)
    grid[:P] = destinations
    grid = grid.reshape(rows, cols, X)
    used = grid.any(axis=0)  # [cols, X]
    deepest = rows - 1 - np.argmax(grid[::-1], axis=0)  # [cols, X]: the deepest destination row per column
    down = np.where(used, deepest, 0).sum(axis=0)
    across = np.where(used.any(axis=0), cols - 1 - np.argmax(used[::-1], axis=0), 0)
    return (across + down).astype(np.int64)


def _weight_byte_hops(offsets: np.ndarray, per_channel: int, fan_in: int, cols: int) -> int:
    """A fold's weight stream over the NoC: each of its channels' ``fan_in`` bytes multicast to the PEs that
    hold neurons of that channel (contiguous PE blocks in channel-major neuron order, section 3)."""
    lo, hi = offsets[:-1], offsets[1:]
    held = hi > lo
    if not held.any():
        return 0
    first = int(lo[held].min()) // per_channel
    last = int(hi[held].max() - 1) // per_channel
    # PE p holds channel c iff its block [lo, hi) meets [c * per_channel, (c + 1) * per_channel); the kernel walks
    # each channel's holders (a PEs x channels matrix took seconds per fold on a 512x512 array)
    return int(fan_in * channel_multicast_links(np.ascontiguousarray(lo, dtype=np.int64),
                                                np.ascontiguousarray(hi, dtype=np.int64), int(per_channel), first,
                                                last, int(cols)))


def _block_channels(offsets: np.ndarray, per_channel: int) -> np.ndarray:
    """Output channels spanned by each PE block [offsets[p], offsets[p+1]) (0 for an empty block)."""
    lo, hi = offsets[:-1], offsets[1:]
    return np.where(hi > lo, (hi - 1) // per_channel - lo // per_channel + 1, 0)


def _fold_layout(n_neurons: int, num_pes: int, cap: int) -> list[tuple[int, int, int, np.ndarray]]:
    """(start, stop, q_f, PE offsets) of every fold when each fold holds P*cap neurons (section 3)."""
    per_fold = num_pes * cap
    out = []
    for f in range(math.ceil(n_neurons / per_fold)):
        start = f * per_fold
        stop = min(n_neurons, (f + 1) * per_fold)
        q = math.ceil((stop - start) / num_pes)
        out.append((start, stop, q, start + np.minimum(np.arange(num_pes + 1, dtype=np.int64) * q, stop - start)))
    return out


def _weight_cap(n_neurons: int, num_pes: int, capacity: int, per_channel: int, fan_in: int, memory: int) -> int:
    """The largest Q <= K such that, with folds of P*Q neurons, every PE's weight share fits ``memory`` bytes."""
    # a block of Q neurons spans at least ceil(Q / per_channel) channels: start below that bound
    cap = max(1, min(capacity, per_channel * (memory // fan_in))) if fan_in else capacity
    while cap > 1:
        if all(int(_block_channels(offsets, per_channel).max()) * fan_in <= memory
               for _, _, _, offsets in _fold_layout(n_neurons, num_pes, cap)):
            return cap
        cap -= 1
    return cap


def _make_folds(
    n_neurons: int, num_pes: int, capacity: int, per_channel: int, fan_in: int, memory: int, cols: int,
    threshold: int = 0,
) -> list[Fold]:
    """Folds of section 3: P*Q neurons each (Q: membrane capacity and weight memory), PE blocks of ceil(n_f/P).

    ``fan_in``: bytes one output channel (conv) or neuron (linear) keeps in a PE's weight memory: its int8 weights
    (summed over an add group's convs) and its bias and threshold words; ``threshold``: its threshold word's bytes
    (0 if it never fires); ``memory``: pe.weight_memory_bytes; ``cols``: the array's columns (the weight multicast).
    """
    cap = _weight_cap(n_neurons, num_pes, capacity, per_channel, fan_in, memory)
    folds = []
    for f, (start, stop, q, offsets) in enumerate(_fold_layout(n_neurons, num_pes, cap)):
        channels = (stop - 1) // per_channel - start // per_channel + 1
        held = _block_channels(offsets, per_channel).astype(np.int64)
        hops = _weight_byte_hops(offsets, per_channel, 1, cols)  # the links of every channel's tree, summed
        folds.append(Fold(f, start, stop, q, offsets, int(channels * fan_in), int(channels), held * fan_in,
                          hops * fan_in, int(channels * threshold), held * threshold, hops * threshold))
    return folds


def _check_fan_ins(arch, too_large: dict[str, int]) -> None:
    """One neuron's weights must fit one PE's weight memory: names the largest of the layers that do not fit, so
    that the fix given is the one that works (a mapping error otherwise)."""
    if not too_large:
        return
    memory = int(arch.pe.weight_memory_bytes)
    layer, fan_in = max(too_large.items(), key=lambda item: item[1])
    names = list(too_large)
    shown = ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])} and {len(names) - 3} more"
    others = "" if len(names) == 1 else f" (the largest of {len(names)} layers that do not fit: {shown})"
    raise _fail(
        arch,
        "pe.weight_memory_bytes",
        f"{memory} B cannot hold the {fan_in} B of weights, bias and threshold of one neuron of layer "
        f"{layer!r}{others}",
        f"raise it to at least {fan_in}",
    )


def exit_unit_batch_room(arch: Arch, workload: Workload) -> tuple[int, int]:
    """Section 12.4: the exit unit's data memory holds its exp table and a batch's output membranes (one word per
    class and image, two with the prediction's running sum, section 7). Returns (the most images it holds, the bytes
    that images_per_batch needs, table included)."""
    eu = arch.exit_unit
    table = int(eu.unit.table_bytes(eu))
    words = 2 if keeps_running_sum(arch.prediction_rule, workload.layers[-1].get("output_mode", "")) else 1
    per_image_bits = words * workload.num_classes * int(eu.vmem_bits)
    most = (int(eu.data_memory_bytes) - table) * 8 // per_image_bits
    return most, -(-int(arch.images_per_batch) * per_image_bits // 8) + table


def _refuse_batch(arch: Arch, workload: Workload, capacity: int) -> None:
    """A batch whose images need more membranes per PE than its data memory holds (``capacity``): the fix given also
    satisfies the exit unit's memory when that refuses the batch too."""
    batch = int(arch.images_per_batch)
    words = 2 if workload.input_encoding == "direct" else 1  # the first layer's current too (section 5)
    pe_bytes = -(-batch * words * int(arch.pe.vmem_bits) // 8)
    most = capacity // words
    # the exit unit holds output membranes only when it holds the output layer (run_checks.check_batch)
    exit_room = exit_unit_batch_room(arch, workload) if int(arch.array.exit_unit_tiles) and workload.has_output \
        else None
    also = ""
    if exit_room is not None and exit_room[0] < batch:
        most, also = min(most, exit_room[0]), f" and exit_unit.data_memory_bytes to {exit_room[1]}"
    fix = (f"use images_per_batch <= {most} or " if most >= 1 else "") + \
        f"raise pe.data_memory_bytes to {pe_bytes}{also}"
    currents = f" (and the layer reading the image {counted(batch, 'current')} beside them)" if words > 1 else ""
    raise _fail(arch, "images_per_batch", f"{counted(batch, 'image')} need{'s' if batch == 1 else ''} "
                f"{counted(batch, 'membrane')} per PE{currents}, and {arch.pe.data_memory_bytes} B of PE data memory "
                f"hold {counted(capacity, f'{arch.pe.vmem_bits}-bit membrane')}", fix)


def build_mapping(arch: Arch, workload: Workload) -> Mapping:
    """Groups, folds, PE blocks and residency of ``workload`` on ``arch`` (raises MappingError)."""
    require_arch_and_workload(arch, workload)
    rows, cols = int(arch.array.rows), int(arch.array.cols)
    exit_tiles = int(arch.array.exit_unit_tiles)
    num_pes = rows * cols - exit_tiles
    if num_pes < 1:
        raise _fail(arch, "array", f"{rows}x{cols} tiles leave no PE", "make the array larger")
    sb = int(arch.spike_address_bytes)
    r = int(arch.noc.link_bytes_per_cycle) // sb
    if r < 1:
        raise _fail(arch, "noc.link_bytes_per_cycle", "carries less than one spike address per cycle", "raise it")
    capacity = int(arch.pe.data_memory_bytes) * 8 // int(arch.pe.vmem_bits)
    if capacity < 1:
        raise _fail(
            arch,
            "pe.data_memory_bytes",
            f"{arch.pe.data_memory_bytes} B cannot hold one {arch.pe.vmem_bits}-bit membrane",
            "raise pe.data_memory_bytes or lower pe.vmem_bits",
        )
    batch = int(arch.images_per_batch)
    fold_capacity = capacity // batch  # a fold's PE keeps the membranes of every image of a batch
    if fold_capacity < 1:
        _refuse_batch(arch, workload, capacity)
    for unit, obj in (("pe", arch.pe), ("exit_unit", arch.exit_unit))[: 2 if exit_tiles else 1]:
        for buf in ("input_spike_buffer_bytes", "output_spike_buffer_bytes"):
            if int(getattr(obj, buf)) // sb < 1:
                raise _fail(
                    arch, f"{unit}.{buf}", f"holds no {sb}-byte spike address", f"make it at least {sb} bytes"
                )
    _check_exit_rule(arch, workload)
    groups = _layer_groups(arch, workload, num_pes, fold_capacity, exit_unit=exit_tiles > 0)
    if groups[-1].kind == "exit" and groups[-1].inputs[0].encoding == "image":
        raise MappingError.at(workload.source, "layers", EXIT_UNIT_READS_IMAGE, exit_unit_reads_image_fix(arch))
    pe_groups = [g for g in groups if g.kind == "pe"]
    _check_routing_size(arch, pe_groups, fold_capacity)
    membranes_resident = batch * sum(math.ceil(g.neurons / num_pes) * g.words_per_neuron for g in pe_groups) \
        <= capacity
    # every weighted layer's weights, with its channels' bias and threshold words (section 3, weight residency)
    total_weight_bytes = sum(g.weight_bytes for g in groups)
    weight_buffer_bytes = int(arch.global_buffers.weight.bytes)
    weights_resident = total_weight_bytes <= weight_buffer_bytes
    # (bytes at t = 1, bytes later): a group reading only the image streams its thresholds alone after t = 1
    fetches = [(f.weight_bytes, f.threshold_bytes if g.reads_image_only else f.weight_bytes)
               for g in pe_groups for f in g.folds]
    fetches += [(g.weight_bytes, g.weight_bytes) for g in groups if g.kind == "exit"]
    weight_fetch_reads = weight_fetch_reads_later = 0
    if not weights_resident:
        weight_fetch_reads = sum(-(-int(w) // weight_buffer_bytes) for w, _ in fetches)
        weight_fetch_reads_later = sum(-(-int(w) // weight_buffer_bytes) for _, w in fetches)
    classes = workload.num_classes
    need = _exit_memory_bytes(arch, classes, workload.layers[-1].get("output_mode", "")) \
        if groups[-1].kind == "exit" else 0
    pe_ids = np.arange(num_pes, dtype=np.int64)
    pe_hops = pe_ids // cols + pe_ids % cols
    return Mapping(
        num_pes=num_pes,
        rows=rows,
        cols=cols,
        capacity_neurons=capacity,
        fold_capacity_neurons=fold_capacity,
        spike_bytes=sb,
        spikes_per_cycle=r,
        pe_hops=pe_hops,
        exit_hops=num_pes // cols + num_pes % cols,
        groups=groups,
        membranes_resident=membranes_resident,
        weights_resident=weights_resident,
        total_weight_bytes=total_weight_bytes,
        num_classes=classes,
        timesteps=workload.timesteps,
        input_encoding=workload.input_encoding,
        exit_memory_bytes=need,
        has_exit_unit=exit_tiles > 0,
        weight_fetch_reads=weight_fetch_reads,
        weight_fetch_reads_after_first_step=weight_fetch_reads_later,
    )


#: The engine keeps every fold's multicast-stream routing for the whole run (``FoldModel``, hw/engine_model.py): per
#: input position of the fold's inputs a 24-byte delivery row and an 8-byte pointer, plus 12 bytes per destination
#: class, so at least this many bytes. A mapping whose routing would exceed the limit even at that lower bound is
#: refused before anything is built (a PE memory of one membrane split a ResNet19 into 96,133 folds; the process was
#: killed at 24 GB of the 124 GiB it would have needed at least).
ROUTING_BYTES_PER_POSITION = 32
ROUTING_LIMIT_BYTES = 4 * 2**30


def _input_positions(spec) -> int:
    """Virtual stream positions of one group input in a fold: a conv map's H x W, a linear input's 1, an identity
    shortcut's neurons."""
    if spec.coverage == "conv":
        return int(spec.spatial[0]) * int(spec.spatial[1])
    return 1 if spec.coverage == "linear" else int(spec.size)


#: While it derives a fold's routing the engine holds a PEs x (conv positions + 1) coverage matrix of the fold
#: (int32) twice and its "reached" mask: at most about this many bytes per entry, all told (measured peaks of
#: `satasim run` on 512x512 arrays: 10.0 B per entry of the 28x28 Fashion-MNIST network, 15.0 B of VGG16's
#: 1,025 positions). A huge array whose matrix would pass the limit is refused.
COVERAGE_BYTES_PER_ENTRY = 15
COVERAGE_LIMIT_BYTES = 4 * 2**30


def _check_coverage_size(arch: Arch, group: Group, num_pes: int) -> None:
    """Refuse an array whose coverage matrix of ``group``'s folds would not fit in memory, naming the array's size
    (checked as each group is mapped: mapping a million PEs' folds alone took half a minute)."""
    positions = 1 + sum(_input_positions(s) for s in group.inputs if s.coverage != "identity")
    need = num_pes * positions * COVERAGE_BYTES_PER_ENTRY
    if need <= COVERAGE_LIMIT_BYTES:
        return
    most = COVERAGE_LIMIT_BYTES // (positions * COVERAGE_BYTES_PER_ENTRY)
    side = math.isqrt(most)
    fix = f"use at most {most:,} PEs for this network (e.g. array.rows and array.cols {side}x{side})"
    if side < 2:  # no array of this network fits: the layer's input map is what is too large
        fix = (f"give layer {group.name!r} a smaller input (at most "
               f"{COVERAGE_LIMIT_BYTES // (4 * COVERAGE_BYTES_PER_ENTRY) - 1:,} positions, for a 2x2 array): no "
               "array can simulate this network")
    raise _fail(arch, "array", f"{arch.array.rows}x{arch.array.cols} tiles ({num_pes:,} PEs) need a coverage "
                f"matrix of every PE and input position of layer {group.name!r} ({positions - 1:,} positions): "
                f"{need / 2**30:,.1f} GiB of memory (the simulator's limit: {COVERAGE_LIMIT_BYTES // 2**30} GiB)",
                fix)


def _check_routing_size(arch: Arch, pe_groups: list, fold_capacity: int) -> None:
    """Refuse a mapping whose per-fold stream routing would not fit in memory, naming the PE memory that sets the
    number of folds (more PEs help less: the folds' inputs stay as large)."""
    positions = sum(len(g.folds) * sum(_input_positions(s) for s in g.inputs) for g in pe_groups)
    need = positions * ROUTING_BYTES_PER_POSITION
    if need <= ROUTING_LIMIT_BYTES:
        return
    folds = sum(len(g.folds) for g in pe_groups)
    worst = max(pe_groups, key=lambda g: len(g.folds))
    bound = _routing_memory_bound(arch, pe_groups)
    fix = (f"raise pe.data_memory_bytes, to {bound:,} B at least (or lower images_per_batch), so that each fold holds "
           "more neurons" if bound else "no PE memory helps, since one fold per layer would not fit either: "
           "simulate a network of fewer or smaller layers")
    raise _fail(arch, "pe.data_memory_bytes",
                f"{arch.pe.data_memory_bytes} B holds {fold_capacity} membrane(s) per PE, fold and image, so the "
                f"network maps to {folds:,} folds ({len(worst.folds):,} in {worst.name!r}), whose stream routing "
                f"would take at least {need / 2**30:,.0f} GiB of memory (the simulator's limit: "
                f"{ROUTING_LIMIT_BYTES // 2**30} GiB)",
                fix)


def _routing_memory_bound(arch: Arch, pe_groups: list) -> int | None:
    """The least PE data memory, in powers of two times the design's, at which the folds' routing could fit: a
    group's folds shrink at most as fast as its PEs' room grows, to one at least. A bound, not a promise: folds follow
    channel boundaries, so more may be needed (the refusal then names the next bound). None: one fold per group
    would not fit either."""
    per_fold = [(len(g.folds), sum(_input_positions(s) for s in g.inputs)) for g in pe_groups]
    if sum(positions for _, positions in per_fold) * ROUTING_BYTES_PER_POSITION > ROUTING_LIMIT_BYTES:
        return None
    factor = 2
    while sum(-(-folds // factor) * positions for folds, positions in per_fold) * ROUTING_BYTES_PER_POSITION \
            > ROUTING_LIMIT_BYTES:
        factor *= 2
    return int(arch.pe.data_memory_bytes) * factor


#: the exit unit has no bit-serial pixel datapath (docs/microarchitecture.md section 11)
EXIT_UNIT_READS_IMAGE = "the output layer reads the image, and the exit unit cannot read pixels"


def exit_unit_reads_image_fix(arch: Arch) -> str:
    """The fix for an output layer that reads the image: a fixed-T design without an exit tile, where the PEs compute
    it. On an exit-unit design the tile alone cannot go (its unit needs one): ``--set array.exit_unit_tiles=0`` was
    advised there too, and refused in turn (h3, session 47)."""
    if arch.exit_unit.kind == "none":
        return "add a layer before it, or run it without an exit tile (--set array.exit_unit_tiles=0), where the PEs " \
               "compute it"
    return ("add a layer before it, or run it on a fixed-T design without an exit tile, where the PEs compute it "
            "(e.g. archs/conventional16x16.yaml with --set array.exit_unit_tiles=0)")


def check_membrane_widths(arch: Arch, workload: Workload) -> None:
    """The arch's membranes must be as wide as the workload's: the functional result always uses the workload's
    widths (``quant.vmem_bits``, ``quant.output_vmem_bits``), so narrower hardware would be timed and charged for
    registers that cannot hold them. The output width is checked only when the exit unit holds the output layer;
    without an exit tile the output layer's membranes sit in PE memory at ``pe.vmem_bits`` (the stated
    simplification of docs/microarchitecture.md section 11.3). Raises MappingError naming the field and the fix."""
    need = workload.vmem_bits
    if int(arch.pe.vmem_bits) < need:
        raise _fail(arch, "pe.vmem_bits", f"{arch.pe.vmem_bits}-bit membranes cannot hold the {need}-bit membranes of "
                    f"{workload.source} (its quant.vmem_bits)", f"use pe.vmem_bits >= {need}")
    if int(arch.array.exit_unit_tiles) > 0 and workload.has_output:
        need = int(workload.meta["quant"].get("output_vmem_bits", 32))
        if int(arch.exit_unit.vmem_bits) < need:
            raise _fail(arch, "exit_unit.vmem_bits", f"{arch.exit_unit.vmem_bits}-bit output membranes cannot hold "
                        f"the {need}-bit output membranes of {workload.source} (its quant.output_vmem_bits)",
                        f"use exit_unit.vmem_bits >= {need}")


def _check_exit_rule(arch, workload: Workload) -> None:
    """An exit rule that decides (at, dt) reads the output layer: a spiking-output network runs fixed-T."""
    kind = arch.exit_unit.kind
    if not workload.has_output and arch.exit_unit.unit.decides:
        last = workload.layers[-1]["name"]
        raise _fail(arch, "exit_unit.kind", f"the {kind} exit rule needs an output layer, but {workload.source} "
                    f"ends in the spiking layer {last!r} (its spike counts are the output, fixed T)",
                    "use a fixed-T architecture (kind: conventional, exit_unit.kind: none) or add an output layer")


def _exit_memory_bytes(arch, classes: int, output_mode: str) -> int:
    """Bytes the exit unit holds: the output membranes, their running sums and its table (raises if they do not fit)."""
    lut_bytes = arch.exit_unit.unit.table_bytes(arch.exit_unit)
    words = 2 * classes if keeps_running_sum(arch.exit_unit.prediction, output_mode) else classes
    need = math.ceil(words * int(arch.exit_unit.vmem_bits) / 8) + lut_bytes
    if need > int(arch.exit_unit.data_memory_bytes):
        table = f" and a {lut_bytes} B table" if lut_bytes else ""  # the conventional output tile has none
        batch = int(arch.images_per_batch)  # a batch keeps every image's membranes (hw/run_checks.check_batch)
        batch_need = -(-batch * words * int(arch.exit_unit.vmem_bits) // 8) + lut_bytes
        raise _fail(
            arch,
            "exit_unit.data_memory_bytes",
            f"{arch.exit_unit.data_memory_bytes} B cannot hold {classes} output membranes"
            f"{' and their running sums' if words > classes else ''}{table}"
            f" ({need} B needed)",
            f"raise it to at least {batch_need}"
            + (f" (the {batch} images of a batch, images_per_batch)" if batch > 1 else ""),
        )
    return need


@dataclass
class _LayerContext:
    """What every layer's group builder needs: the workload, its layers by name, and the PE array's size."""

    workload: Workload
    by_name: dict[str, dict]
    num_pes: int
    capacity: int
    arch: object  # for pe.weight_memory_bytes, the array's columns and its error messages
    exit_unit: bool = True  # False: the output layer is a PE group
    fan_in_too_large: dict[str, int] = field(default_factory=dict)  # groups whose neuron outgrows a weight memory

    def input_for(self, src: str, consumer: dict) -> GroupInput:
        return _input_for(self.by_name, src, consumer, self.workload.input_encoding, self.workload.input_shape)

    def folds(self, group: Group, per_channel: int, fan_in: int) -> list[Fold]:
        """The group's folds (section 3); none when one neuron's weights outgrow a PE's weight memory (recorded,
        refused once every group is seen)."""
        _check_coverage_size(self.arch, group, self.num_pes)
        memory = int(self.arch.pe.weight_memory_bytes)
        params, threshold = channel_parameter_bytes(self.arch, group.spiking)
        fan_in += params  # a channel's bias and threshold words sit beside its weights (section 3)
        if fan_in > memory:
            self.fan_in_too_large[group.name] = fan_in
            return []
        capacity = self.capacity // group.words_per_neuron  # neurons, not words, per PE, fold and image
        if capacity < 1:
            _refuse_current_room(self.arch, group, self.workload)
        return _make_folds(group.neurons, self.num_pes, capacity, per_channel, fan_in, memory,
                           int(self.arch.array.cols), threshold)

    def parameter_bytes(self, group: Group, per_channel: int) -> int:
        """Bias and threshold bytes of a PE group: one set per output channel (conv) or neuron (linear)."""
        return group.neurons // per_channel * channel_parameter_bytes(self.arch, group.spiking)[0]


def _refuse_current_room(arch, group: Group, workload: Workload) -> None:
    """A PE data memory with one word per image cannot hold a first-layer neuron's membrane and current; the fix
    names the exit unit's memory too when it cannot hold the batch either (followed, the PE's alone was refused
    again, by the exit unit)."""
    batch = int(arch.images_per_batch)
    words = group.words_per_neuron
    exit_room = exit_unit_batch_room(arch, workload) if int(arch.array.exit_unit_tiles) and workload.has_output \
        else None
    also = f" and exit_unit.data_memory_bytes to at least {exit_room[1]}" if exit_room and exit_room[0] < batch else ""
    raise _fail(arch, "pe.data_memory_bytes",
                f"{arch.pe.data_memory_bytes} B hold {int(arch.pe.data_memory_bytes) * 8 // int(arch.pe.vmem_bits)} "
                f"{arch.pe.vmem_bits}-bit word(s) per PE, and layer {group.name!r} reads the image: each of its "
                f"neurons keeps its membrane and its constant current ({words} words) for each of the "
                f"{batch} image(s) of a batch",
                f"raise pe.data_memory_bytes to at least {-(-words * batch * int(arch.pe.vmem_bits) // 8)}{also}"
                + (" or lower images_per_batch" if batch > 1 else ""))


def _layer_groups(arch, workload: Workload, num_pes: int, capacity: int, exit_unit: bool = True) -> list[Group]:
    """One group per spiking conv/linear layer, add, max-pool and the output layer, in layer order."""
    layers = workload.layers
    ctx = _LayerContext(workload, {ly["name"]: ly for ly in layers}, num_pes, capacity, arch, exit_unit)
    consumed_by_add = {name for ly in layers if ly["type"] == "add" for name in ly["inputs"]}
    groups: list[Group] = []
    for ly in layers:
        kind = ly["type"]
        name = ly["name"]
        if kind in ("flatten", "avgpool"):
            continue
        if kind in ("conv", "linear") and not is_spiking(ly):
            if name not in consumed_by_add:
                raise MappingError.at(
                    workload.source, f"layers.{name}", "a non-spiking layer must feed an add", "fix the layer table"
                )
            continue  # executed inside its add group
        out_shape = tuple(int(v) for v in ly["out_shape"])
        builder = _GROUP_BUILDERS.get(kind)
        if builder is None:  # pragma: no cover - validated layer types
            raise MappingError.at(workload.source, f"layers.{name}.type", f"unsupported {kind!r}", "fix the layer")
        groups.append(builder(ctx, ly, len(groups), out_shape))
    _check_fan_ins(arch, ctx.fan_in_too_large)
    return groups


def _weighted_group(ctx: _LayerContext, ly: dict, index: int, out_shape: tuple[int, ...],
                    spiking: bool = True) -> Group:
    """A spiking conv/linear layer (or, ``spiking`` False, the output layer on the PEs): a PE group."""
    name = ly["name"]
    inp = ctx.input_for(ly["inputs"][0], ly)
    fan_in = int(np.prod(weight_shape(ly)[1:]))
    per_channel = int(np.prod(out_shape[1:])) if ly["type"] == "conv" else 1
    group = Group(index, "pe", name, [name], out_shape, [inp], spiking=spiking)
    group.weight_bytes = layer_weight_bytes(ly) + ctx.parameter_bytes(group, per_channel)
    group.folds = ctx.folds(group, per_channel, fan_in)
    return group


def _add_group(ctx: _LayerContext, ly: dict, index: int, out_shape: tuple[int, ...]) -> Group:
    """A residual add: one PE group with its main conv and its shortcut (a conv, or identity spikes)."""
    name, by_name, encoding = ly["name"], ctx.by_name, ctx.workload.input_encoding
    main, short = (by_name[s] for s in ly["inputs"])
    convs = [main] + ([short] if short["type"] in ("conv", "linear") and not is_spiking(short) else [])
    inputs = [ctx.input_for(c["inputs"][0], c) for c in convs]
    if len(convs) == 1:
        src = _resolve_source(by_name, short["name"])
        if src == "input" and encoding == "direct":
            raise MappingError.at(
                ctx.workload.source,
                f"layers.{name}.inputs",
                "an identity shortcut from a direct-encoded image is not supported",
                "use a conv shortcut",
            )
        inputs.append(
            GroupInput(src, "spikes" if src != "input" else "frames", "identity", tuple(short["out_shape"]))
        )
    fans = [int(np.prod(weight_shape(c)[1:])) for c in convs]
    per_channel = int(np.prod(out_shape[1:])) if len(out_shape) == 3 else 1
    group = Group(
        index,
        "pe",
        name,
        [c["name"] for c in convs] + [name],
        out_shape,
        inputs,
    )
    # one pre-summed bias per channel (its convs' and the join's all add into the same membrane) and its threshold
    group.weight_bytes = sum(layer_weight_bytes(c) for c in convs) + ctx.parameter_bytes(group, per_channel)
    group.folds = ctx.folds(group, per_channel, sum(fans))
    return group


def _pool_group(ctx: _LayerContext, ly: dict, index: int, out_shape: tuple[int, ...]) -> Group:
    """A max-pool of spikes: a pool group."""
    name, encoding = ly["name"], ctx.workload.input_encoding
    src = _resolve_source(ctx.by_name, ly["inputs"][0])
    enc = "spikes" if src != "input" else ("image" if encoding == "direct" else "frames")
    if enc == "image":
        raise MappingError.at(
            ctx.workload.source, f"layers.{name}", "max-pooling a direct-encoded image", "pool spikes only"
        )
    shape = tuple(int(v) for v in (ctx.workload.input_shape if src == "input" else ctx.by_name[src]["out_shape"]))
    return Group(
        index,
        "pool",
        name,
        [name],
        out_shape,
        [GroupInput(src, enc, "pool", shape)],
        pool_kernel=int(ly["kernel"]),
        pool_stride=int(ly["stride"]),
    )


def _exit_group(ctx: _LayerContext, ly: dict, index: int, out_shape: tuple[int, ...]) -> Group:
    """The output layer: the exit unit's group, or without an exit unit a PE group that never spikes."""
    if not ctx.exit_unit:  # docs/microarchitecture.md section 11: folds, blocks and coverage as a linear layer
        return _weighted_group(ctx, ly, index, out_shape, spiking=False)  # one bias per class, no threshold
    inp = ctx.input_for(ly["inputs"][0], ly)
    biases = int(np.prod(out_shape)) * parameter_word_bytes(ctx.arch.exit_unit.vmem_bits)  # one per class (section 7)
    return Group(index, "exit", ly["name"], [ly["name"]], out_shape, [inp],
                 weight_bytes=layer_weight_bytes(ly) + biases)


# one group builder per layer type that makes a group
_GROUP_BUILDERS = {
    "conv": _weighted_group,
    "linear": _weighted_group,
    "add": _add_group,
    "maxpool": _pool_group,
    "output": _exit_group,
}
