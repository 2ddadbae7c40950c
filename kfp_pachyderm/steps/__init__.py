"""Your own steps: a plain Python function over directories becomes a Pachyderm-native KFP
component with pinned commit inputs, one output commit with provenance, reuse of earlier
results, and datum-level incremental processing. Declare one with ``kfp_pachyderm.pfs_step``
(:mod:`kfp_pachyderm.steps.component`); a component's container runs it with
:mod:`kfp_pachyderm.steps.run`, which does not import the KFP DSL."""
