"""Names, shapes and units of every field of a structure graph (one place, like NequIP's _keys).

A *graph* is a dict of NumPy arrays (one structure) or TF tensors (a batch, see
``deeph_tf.data.pipeline``). Nodes are atoms; edges are the off-site atom pairs
(R, i, j) of overlap.h5 (or of a radius neighbour list): block <phi_i(0)| A |phi_j(R)>.
On-site blocks (R = 0, i = i) are node targets. n_c is the number of orbitals of the
dataset's common orbital layout (``deeph_tf.data.layout.OrbitalLayout``); blocks are padded
to [n_c, n_c] and masks say which entries are real.
"""

# --- per structure ------------------------------------------------------------------------------
#: [n_atoms] int32, atomic numbers.
ATOMIC_NUMBERS = "atomic_numbers"
#: [n_atoms] int32, index of each atom's element in ``OrbitalLayout.elements``.
SPECIES = "species"
#: [n_atoms, 3] float, Cartesian positions, Angstrom.
POSITIONS = "positions"
#: [3, 3] float, lattice vectors as rows, Angstrom.
LATTICE = "lattice"
#: [n_edges] int32, row atom i of the block <i(0)|A|j(R)>.
EDGE_SRC = "edge_src"
#: [n_edges] int32, column atom j.
EDGE_DST = "edge_dst"
#: [n_edges, 3] int32, lattice translation R of atom j, in lattice units.
EDGE_SHIFT = "edge_shift"
#: [n_edges] int32, index of the Hermitian partner edge (-R, j, i).
EDGE_REVERSE = "edge_reverse"
#: [n_atoms, n_c, n_c] bool, DeepH mask of the on-site blocks (entries that exist and count).
NODE_MASK = "node_mask"
#: [n_edges, n_c, n_c] bool, DeepH mask of the off-site blocks: real entry and max|S| of the
#: shell pair > OVERLAP_MASK_THRESHOLD.
EDGE_MASK = "edge_mask"
#: () string, structure id (path relative to the dataset's dft/ folder).
STRUCTURE_ID = "structure_id"

#: Operators that can be targets; each gives ``node_<name>`` [n_atoms, n_c, n_c] and
#: ``edge_<name>`` [n_edges, n_c, n_c] (padded with zeros). Hamiltonian in eV; overlap and
#: density matrix dimensionless. The overlap is stored whenever overlap.h5 exists (masks,
#: gauge-corrected metrics and eigenvalues need it), whether or not it is a target.
HAMILTONIAN = "hamiltonian"
OVERLAP = "overlap"
DENSITY_MATRIX = "density_matrix"
OPERATORS = (HAMILTONIAN, OVERLAP, DENSITY_MATRIX)


def node_key(operator: str) -> str:
    """``node_<operator>``: [n_atoms, n_c, n_c] on-site blocks."""
    return f"node_{operator}"


def edge_key(operator: str) -> str:
    """``edge_<operator>``: [n_edges, n_c, n_c] off-site blocks."""
    return f"edge_{operator}"


#: Operators with a spin part in spinful (spin-orbit) data; overlap.h5 stays spinless. In a
#: spinful graph set each spinful block H = I_2 (x) A + i sum_k sigma_k (x) B_k
#: (``deeph_tf.so3.spin_blocks``) is stored as its scalar part A in ``node_<op>`` /
#: ``edge_<op>`` and its axial-vector part B in ``node_<op>_spin`` / ``edge_<op>_spin``.
SPIN_OPERATORS = (HAMILTONIAN, DENSITY_MATRIX)


def node_spin_key(operator: str) -> str:
    """``node_<operator>_spin``: [n_atoms, 3, n_c, n_c] B_k of the on-site blocks (k = x, y, z; eV for H)."""
    return f"node_{operator}_spin"


def edge_spin_key(operator: str) -> str:
    """``edge_<operator>_spin``: [n_edges, 3, n_c, n_c] B_k of the off-site blocks (k = x, y, z)."""
    return f"edge_{operator}_spin"


def spin_operators(operators, spinful: bool):
    """The operators of a graph set that carry a spin part (none unless ``spinful``)."""
    return tuple(op for op in operators if spinful and op in SPIN_OPERATORS)

# --- fields a batch adds (``deeph_tf.data.pipeline``: disjoint union padded to a bucket) ------
#: [n_nodes] int32, graph of each node in the batch (n_graphs for padding nodes).
NODE_GRAPH = "node_graph"
#: [n_nodes] bool, the node is a real atom (False for padding).
NODE_VALID = "node_valid"
#: [n_edges] bool, the edge is real (False for padding).
EDGE_VALID = "edge_valid"
#: [n_graphs] bool, the structure is real (False for padding graphs).
GRAPH_VALID = "graph_valid"
#: [n_edges, 3] float, R @ lattice, Angstrom.
EDGE_SHIFT_VECTOR = "edge_shift_vector"
#: [n_edges, 3] float, r_j + R @ lattice - r_i, Angstrom.
EDGE_VECTOR = "edge_vector"

# --- force-field graph sets (model.target "energy_force") ---------------------------------------
#: The pseudo-operator naming a force-field graph set: its records hold energy/force labels
#: instead of blocks and masks; edges are a radius graph of the model's cutoff.
ENERGY_FORCE = "energy_force"
#: () float per structure (a [n_graphs] vector in a batch): total energy, eV.
ENERGY = "energy"
#: [n_atoms, 3] float: forces, eV/Angstrom.
FORCES = "forces"
#: [3, 3] float per structure: virial, eV (DeePMD: -dE/d(strain)); zeros when unknown.
VIRIAL = "virial"
#: () bool per structure: the virial label is known.
VIRIAL_VALID = "virial_valid"


def is_energy_force(operators) -> bool:
    """Whether a graph set's operators name a force-field set (``(ENERGY_FORCE,)``)."""
    return tuple(operators) == (ENERGY_FORCE,)
