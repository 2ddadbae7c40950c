"""The codec layer: what the Pachyderm client (:mod:`kfp_pachyderm.pfs`) and the local server
(:mod:`kfp_pachyderm.local`) agree on, so that neither imports the other.

It holds the wire encoding of the messages that carry file bytes (``wire``) and fast protobuf
classes for the others (``fastproto``), the hash that names file content (``contenthash``),
hashing while moving bytes between disk and wire (``diskio``), the gRPC channel limits both
ends set (``channel``), and the names of PFS (``names``): the default project and branch, the
shape of names and commit IDs, and the normal form of a path.

It holds no I/O policy: it opens no connection, makes no RPC, and neither retries nor times
out; what to send, where and when is the caller's. It imports only :mod:`kfp_pachyderm.errors`.
"""
