"""The gRPC channel settings both ends of a transfer set: the largest message either sends or
takes, and the receive window.

Example:
    >>> grpc.insecure_channel(address, options=CHANNEL_OPTIONS)        # doctest: +SKIP
"""

from __future__ import annotations

MAX_MESSAGE_BYTES = 64 << 20
# A fixed 8 MiB receive window instead of grpc's BDP probing, which grew it on loopback until a
# reader's peak memory varied between 118 and 283 MB (the local server's, receiving a commit,
# between 82 and 121 MB); the fixed window moves data as fast. Both sides' channel options.
FIXED_RECEIVE_WINDOW = (("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 8 << 20))
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    *FIXED_RECEIVE_WINDOW,
)
