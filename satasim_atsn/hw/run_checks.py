"""What a run may ask, checked before any image: the image range, this machine's memory for the per-image results and
for one image's draw, and the design's mapping of the workload (with the batch its exit unit must hold). Each refusal
is one line naming the option or field and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from satasim_atsn.errors import MappingError, SatasimError, whole_count
from satasim_atsn.hw.energy import check_technology
from satasim_atsn.hw.mapping import Mapping, build_mapping, check_membrane_widths, exit_unit_batch_room
from satasim_atsn.workload.format import Workload

if TYPE_CHECKING:
    from satasim_atsn.hw.arch import Arch

#: what one image's results cost in memory, at least (start and end cycles, exit step, predictions, energies; a run
#: keeps them all for the per-image JSON: 200-500 B measured, session 35)
RECORD_BYTES_PER_IMAGE = 256


def image_count(workload: Workload, images: int | None, start: int = 0,
                options: tuple[str, str] = ("--images", "--start")) -> int:
    """The number of images a run of ``images`` from ``start`` simulates (all the rest when None); a count below 1
    or past the workload's end is a one-line SatasimError naming the option (``options``: the command's, or the
    Python arguments' names for a script) and the fix."""
    available = workload.num_images
    images_option, start_option = options
    images = None if images is None else whole_count(images, workload.source, images_option)
    start = whole_count(start, workload.source, start_option)
    if images is not None and images < 1:
        raise SatasimError.at(workload.source, images_option, f"must be >= 1, got {images}", "give a positive count")
    if not 0 <= start < available:
        raise SatasimError.at(workload.source, start_option, f"{start} is outside 0..{available - 1}",
                              "pick an existing image")
    count = available - start if images is None else images
    if start + count > available:
        raise SatasimError.at(workload.source, images_option, f"{count} images from {start} exceed the {available}"
                              " available", f"use at most {available - start}")
    return count


def physical_memory_bytes() -> int | None:
    """This machine's physical memory (None where the OS does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def check_record_memory(workload: Workload, count: int, start: int = 0) -> None:
    """Refuse, in one line naming --images, a run whose per-image results alone exceed this machine's memory: it
    would fill memory before its first image and die without a word (a statistical file of 10^9 images)."""
    memory = physical_memory_bytes()
    if memory is None or count * RECORD_BYTES_PER_IMAGE <= memory:
        return
    most = memory // RECORD_BYTES_PER_IMAGE
    raise SatasimError.at(workload.source, "--images", f"{count:,} images from {start} keep at least "
                          f"{count * RECORD_BYTES_PER_IMAGE / 2**30:,.0f} GiB of per-image results, more than this "
                          f"machine's {memory / 2**30:,.0f} GiB of memory", f"simulate at most {most:,} images per run "
                          "(--images, and --start for the next ones)")


def check_draw_memory(workload: Workload) -> None:
    """Refuse, in one line naming the timesteps, a statistical workload whose draw of a single image exceeds this
    machine's memory (its spikes over T timesteps, and the float32 thresholds and uniforms it holds): it would fill
    memory and be killed without a word."""
    if not workload.is_statistical:
        return
    from satasim_atsn.traces.statistical_draw import draw_memory_bytes

    memory = physical_memory_bytes()
    need, row = draw_memory_bytes(workload)
    if memory is None or need <= memory:
        return
    raise SatasimError.at(workload.source, "meta.timesteps", f"drawing one image takes at least {need / 2**30:,.1f} GiB"
                          f" (its spikes over T = {workload.timesteps} timesteps and the float32 thresholds and "
                          f"uniforms of {row:,} per timestep it holds), more "
                          f"than this machine's {memory / 2**30:,.1f} GiB of memory", "build the workload with fewer "
                          "timesteps (satasim workload build --timesteps, or the rate table's timesteps) or a smaller "
                          "network")


def check_batch(arch: Arch, mapping: Mapping, workload: Workload) -> None:
    """Section 12.4: the exit unit holds a whole batch's output membranes (and their running sums, section 7).

    layer_major needs no more weight room than timestep_major: a fold's weights stay in the PE weight
    memories (section 3 sizes the folds so that every PE's share fits) for all T timesteps.
    """
    if mapping.exit_group is None:  # no exit unit: the output membranes live in the PEs (section 3 capacity)
        return
    b = int(arch.images_per_batch)
    eu = arch.exit_unit
    most, need = exit_unit_batch_room(arch, workload)
    if need > int(eu.data_memory_bytes):
        table = int(eu.unit.table_bytes(eu))
        raise MappingError.at(arch.where, "images_per_batch", f"{b} images need {need - table} B of output membranes"
                              f" in the exit unit, its {eu.data_memory_bytes} B hold"
                              f"{f' a {table} B table and' if table else ''} those of {most}",
                              f"use images_per_batch <= {most} or raise exit_unit.data_memory_bytes to {need}")


def check_mappable(arch: Arch, workload: Workload) -> Mapping:
    """The mapping of ``workload`` on ``arch``, or the MappingError :func:`simulate` raises before any image (or the
    ArchError of a technology entry the design reads and its table lacks)."""
    mapping = build_mapping(arch, workload)
    check_membrane_widths(arch, workload)
    check_batch(arch, mapping, workload)
    check_technology(arch)
    return mapping
