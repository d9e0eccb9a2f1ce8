"""NIR (Neuromorphic Intermediate Representation) import and export, with the optional ``nir`` package: the public
interface, one import for the CLI and for users' scripts. Each part lives in its own module:

- nir_files.py: the ``nir`` package, reading and writing graphs, and the inputs an import embeds;
- nir_export.py: a workload's integer network as a NIR graph;
- nir_import.py: a NIR graph as an integer workload (its docstring has the mapping; users' docs/networks.md);
- nir_meta.py, nir_graph_walk.py, nir_neurons.py, nir_layers.py: the import's parts (its metadata, the walk over
  the nodes, neuron parameters at dt, the quantised integer layers);
- nir_reference.py: the float64 reference forward of a graph and its agreement with the import;
- nir_graph.py: what they share (the step dt, node-parameter readers, node errors, dependency order).
"""

from __future__ import annotations

from satasim_atsn.interchange.nir_export import export_nir
from satasim_atsn.interchange.nir_files import load_inputs, read_nir, require_nir, write_nir
from satasim_atsn.interchange.nir_graph import DEFAULT_DT, SUPPORTED
from satasim_atsn.interchange.nir_graph_walk import check_nodes
from satasim_atsn.interchange.nir_import import ImportResult, import_nir
from satasim_atsn.interchange.nir_reference import agreement, float_forward

__all__ = ["DEFAULT_DT", "SUPPORTED", "ImportResult", "agreement", "check_nodes", "export_nir", "float_forward",
           "import_nir", "load_inputs", "read_nir", "require_nir", "write_nir"]
