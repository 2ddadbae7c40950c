"""Component bodies: what each component runs inside its container, one module per component.

A component's Python function builds the module's frozen inputs dataclass from its parameters
in one line and calls the module's ``run``; everything else lives in the library layers below.
"""
