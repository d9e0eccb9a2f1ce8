"""Figures published by others that docs/validation.md sets beside the simulator's (`satasim validate`).

Every figure carries its source and whether we could check it against that source (``verified``): a
figure we could not find in the text we could read is kept, marked as such, never silently trusted.
The paper's own Table 3 lives in ``study/paper.py`` with the rest of the paper's numbers.
"""

from __future__ import annotations

#: Published SNN chips' energy per synaptic operation (pJ/SOP). ``closest`` names the simulated
#: configuration of study/validate.py that is nearest to the chip; ``why`` gives the reasons the two differ.
SNN_CHIPS: list[dict] = [
    {
        "chip": "ANP-I", "node": "28 nm", "pJ_per_sop": 1.5, "figure_checked": True, "scope": "on_chip",
        "counts": "inference energy per synaptic operation, asynchronous core at 0.56 V, 40 MHz",
        "source": "J. Zhang et al., 'ANP-I: A 28-nm 1.5-pJ/SOP Asynchronous Spiking Neural Network Processor "
                  "Enabling Sub-0.1-uJ/Sample On-Chip Learning for Edge-AI Applications', IEEE JSSC 59(8), "
                  "2717-2729, 2024",
        "verified": "yes: title (28 nm, 1.5 pJ/SOP) and abstract (0.56 V, 40 MHz, 1.25 mm2)",
        "closest": "small",
        "why": "asynchronous and near-threshold (0.56 V: about (0.56/0.9)^2 = 0.39x our 0.9 V switching energy), "
               "no clock or leakage over a stalled makespan, weights in on-chip SRAM next to the neurons, no DRAM",
    },
    {
        "chip": "Tianjic", "node": "28 nm", "pJ_per_sop": 1.54, "figure_checked": False, "scope": "on_chip",
        "counts": "energy per synaptic operation of the SNN mode",
        "source": "J. Pei et al., 'Towards artificial general intelligence with hybrid Tianjic chip architecture', "
                  "Nature 572, 106-111, 2019",
        "verified": "no: the paper was found (title, authors) but not the 1.54 pJ/SOP figure or the node in the text "
                    "we could read; both are the issue's figures",
        "closest": "small",
        "why": "a many-core hybrid ANN/SNN chip with weights in each core's local memory and no DRAM in the "
               "figure; its SOP includes that local memory read",
    },
    {
        "chip": "ReckOn", "node": "28 nm FDSOI", "pJ_per_sop": 5.3, "figure_checked": False, "scope": "on_chip",
        "counts": "energy per synaptic operation (inference), 0.5 V",
        "source": "C. Frenkel and G. Indiveri, 'ReckOn: A 28nm Sub-mm2 Task-Agnostic Spiking Recurrent Neural "
                  "Network Processor Enabling On-Chip Learning over Second-Long Timescales', ISSCC 2022",
        "verified": "partly: title, 28 nm FDSOI, 0.5 V and 0.45 mm2 checked; the 5.3 pJ/SOP figure was not found "
                    "in the text we could read (the issue's figure)",
        "closest": "small",
        "why": "a 256-neuron recurrent core at 0.5 V with 8-bit weights in SRAM read at every SOP and 16-bit "
               "states; no external memory, no 4-accelerator leakage",
    },
    {
        "chip": "ODIN", "node": "28 nm FDSOI", "pJ_per_sop": 12.7, "figure_checked": True, "scope": "on_chip",
        "counts": "minimum energy per synaptic operation at 0.55 V (incl. the synapse SRAM read and neuron update)",
        "source": "C. Frenkel, M. Lefebvre, J.-D. Legat, D. Bol, 'A 0.086-mm2 12.7-pJ/SOP 64k-Synapse 256-Neuron "
                  "Online-Learning Digital Spiking Neuromorphic Processor in 28nm CMOS', IEEE TBioCAS 13(1), 2019",
        "verified": "yes: title and abstract (12.7 pJ/SOP minimum, 28 nm FDSOI, 0.55 V)",
        "closest": "small",
        "why": "one 256-neuron core, 4-bit synapses in a 64k-synapse SRAM, time-multiplexed neuron updates, "
               "learning logic on; its SOP includes the neuron state read-modify-write that our model charges "
               "separately (pe_dm_reads/writes) and the synapse read, which our model charges as pe_weight_reads",
    },
    {
        "chip": "TrueNorth", "node": "28 nm", "pJ_per_sop": 26.0, "figure_checked": False,
        "scope": "on_chip_dynamic",  # "active power only": no leakage
        "counts": "energy per synaptic event (active power only)",
        "source": "P. A. Merolla et al., 'A million spiking-neuron integrated circuit with a scalable communication "
                  "network and interface', Science 345(6197), 668-673, 2014",
        "verified": "partly: 28 nm (Samsung), 4096 cores, 1M neurons, 256M synapses and 63 mW at 400x240 30 fps "
                    "checked; the 26 pJ per synaptic event figure was not found in the text we could read",
        "closest": "small",
        "why": "4096 asynchronous crossbar cores, the synapse SRAM read in every event and a mesh router per "
               "core; active power only, no DRAM",
    },
]

#: On-chip power of SNN accelerators at 28 nm and 500 MHz, as used by the Prosperity artifact.
PROSPERITY_POWER_MW: dict[str, float] = {
    "Eyeriss": 1410.5, "PTB": 982.0, "SATO": 319.5, "MINT": 396.3, "Stellar": 834.0, "Prosperity": 446.5,
}
PROSPERITY_SOURCE = (
    "'Prosperity: Accelerating Spiking Neural Networks via Product Sparsity', HPCA 2025; its artifact "
    "github.com/dubcyfor3/Prosperity, simulator/energy.py at commit e592d5a6 (on_chip_power_dict, "
    "mW, 'derived from papers', used at 500 MHz with DRAM at 12.45 pJ/bit 'derived from DRAMsim3')"
)
PROSPERITY_VERIFIED = (
    "partly: the paper's table itself could not be read; these are the artifact's values. An earlier commit "
    "(215612be, energy.py) lists other values for the baselines (Eyeriss 1128.4, SATO 150.88, PTB 796.4, MINT "
    "317.1 mW; no Stellar) and the same 446.5 mW for Prosperity, so which set the printed table holds is unverified"
)

#: Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, 45 nm, 0.9 V (pJ).
HOROWITZ_45NM_PJ: dict[str, float] = {
    "add_8b": 0.03, "add_16b": 0.05, "add_32b": 0.1, "mult_8b": 0.2, "mult_32b": 3.1,
    "sram_8KB_64b_read": 10.0, "sram_32KB_64b_read": 20.0, "sram_1MB_64b_read": 100.0,
    "dram_64b_low": 1300.0, "dram_64b_high": 2600.0,
}
HOROWITZ_SOURCE = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, 45 nm "
                   "0.9 V (figures as listed in DESIGN.md section 7; integer add/mult figures cross-checked against "
                   "public energy tables that cite the talk)")
#: Stillmaker & Baas, Integration 2017: 45 -> 28 nm energy factor (the technology table applies the same one)
SCALE_45_TO_28 = 0.51

#: Published DRAM access energies (pJ/bit) beside the technology table's parts.
DRAM_PUBLISHED: list[dict] = [
    {"part": "dram_lpddr4", "label": "LPDDR4", "pJ_per_bit": 8.0,
     "source": "Accelergy CACTI plug-in (cacti_wrapper.py, 'public data')", "verified": "yes (the plug-in's code)"},
    {"part": "dram_ddr4", "label": "DDR4 (DRAMsim3, Prosperity artifact)", "pJ_per_bit": 12.45,
     "source": "Prosperity artifact simulator/energy.py (e592d5a6): 12.45 pJ/bit 'derived from DRAMsim3' (device "
               "and background not stated)", "verified": "yes (the artifact's code); what it includes is not stated"},
    {"part": "dram_hbm2", "label": "HBM2", "pJ_per_bit": 3.9,
     "source": "O'Connor, Chatterjee et al., MICRO 2017, via Accelergy's CACTI plug-in (3.9 pJ/bit)",
     "verified": "partly: through the plug-in's citation, not the paper's text"},
    {"part": "dram_horowitz", "label": "DRAM (Horowitz, 45 nm era)", "pJ_per_bit": 30.0,
     "source": "Horowitz ISSCC 2014: 1.3-2.6 nJ per 64 bits = 20-40 pJ/bit (midpoint)",
     "verified": "as listed in DESIGN.md section 7"},
]
