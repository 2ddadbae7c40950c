"""Component bodies: what each component runs inside its container, one module per component.

Each module declares the component's contract (its inputs dataclass and ``CONTRACT``,
:mod:`kfp_pachyderm.kfp.contract`), from which the component is generated, and ``run``, which
the generated component calls with those inputs; the work lives in the library layers below.
``pfs_step`` holds the one body of every ``pfs_step`` component.
"""
