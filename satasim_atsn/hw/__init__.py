"""hw package: the accelerator model (architecture, mapping, engine, per-cycle reference, energy)."""

#: Version of the hardware model's results. Bump it with any change that changes what a simulation of the
#: same inputs reports (the rules of docs/microarchitecture.md, or a shipped technology table): study
#: points are keyed by it, so rows computed by an older model are computed again instead of reused.
#: 1: sessions 1-13. 2: session 14, a batch of b images keeps b membranes per neuron in the PE data memory.
#: 3: session 15, a fold's weight fetch is split into one DRAM read and stream per weight-buffer-full.
#: 4: session 16, a weight bank is refilled from DRAM as soon as it has been streamed (weight prefetch).
#: 5: session 20, the exit unit's shift-add decay unit counts in its area and leakage (its energy already did).
#: 6: session 24, the exit unit's decay unit is the PEs' kind (pe.decay), not always shift-add; the weight stream runs
#:    at min(weight port, NoC link) bytes per cycle; pooled maps beyond the spike buffer are spilled like any map.
#: 7: session 26, a membrane fill or spill crosses the mesh's entry link: its DRAM transaction runs at
#:    min(DRAM, NoC link) bytes per cycle, and it is charged byte-hops and one PE data-memory access per membrane;
#:    a compute phase's output spikes reach the output buffer over one link (at least ceil(S_out / r) cycles).
#: 8: session 27, a multicast (an input-stream spike, a channel's weights) is charged the links of its XY tree
#:    from tile (0, 0), once (spikes were charged one route per destination PE, weights every byte x the mesh's
#:    depth, rows + cols - 2); the exit unit's decision adds and its writes of the output layer's weights are
#:    counted and charged (exit_decision_adds, exit_weight_write_bytes).
#: 9: session 31, a layer that reads the direct-encoded image keeps each neuron's constant current in the PE data
#:    memory beside its membrane: two words per neuron and image (its folds hold half the neurons, residency
#:    counts both), a fire update reads both, and when membranes move the current is filled at every t > 1 and
#:    spilled once, after t = 1 (docs/microarchitecture.md section 5).
#: 10: session 32, a layer reading only the direct-encoded image streams its weights and biases at t = 1 only (its
#:    thresholds alone later); every channel's bias and threshold words sit beside its weights in the PE weight
#:    memory and are streamed with them (the exit unit's biases too); an analog PE's ADC area follows the
#:    conversion rate it is built for (clock_hz / pe.adc_cycles_per_conversion) by the technology table's
#:    adc_area_rate_exponent (docs/energy.md).
#: 11: session 42, the AT unit's fixed-point width is a design field (exit_unit.exp_frac_bits), 23 by default instead
#:    of a fixed 20: its exits follow the float rule more closely (CL_t and the exp table in 23 fraction bits, the
#:    most the same 3-byte table words hold); a width needing more bytes sizes the table and its reads by them.
#: 12: session 45, the tile pitch (the NoC link of a hop) counts an analog PE's ADC at its table point's area, not at
#:    the clock's conversion rate: a clock or adc_cycles_per_conversion other than the table's rate moved the energy
#:    per NoC byte-hop (0.06% per doubling), and energy per action never depends on the clock.
MODEL_VERSION = 12
