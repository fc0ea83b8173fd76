"""Keras 3 equivariant model: layers, blocks, heads and the Hamiltonian network.

Features are flat tensors ``[..., irreps.dim]`` (e3nn layout, DeepH m-order).

* :mod:`~deeph_tf.model.linear`, :mod:`~deeph_tf.model.gate`, :mod:`~deeph_tf.model.norm`,
  :mod:`~deeph_tf.model.radial`: equivariant linear, gated nonlinearity, layer norm, radial basis.
* :mod:`~deeph_tf.model.tensor_product`: edge tensor products, SO(2)/eSCN and Clebsch-Gordan.
* :mod:`~deeph_tf.model.blocks`: the interaction block (node and edge updates).
* :mod:`~deeph_tf.model.backbone`: :class:`Backbone` (geometry, embeddings, blocks), shared by both models; presets.
* :mod:`~deeph_tf.model.head`: irreps -> orbital blocks, Hermitian symmetrization.
* :mod:`~deeph_tf.model.network`: :class:`HamiltonianModel`.
* :mod:`~deeph_tf.model.energy`: :class:`EnergyForceModel` (energy, forces, virial).
* :mod:`~deeph_tf.model.statistics`: dataset statistics the model is built with.
"""
