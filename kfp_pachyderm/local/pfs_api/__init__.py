"""The pfs_v2.API service of the local Pachyderm server, on pachyderm_sdk's own messages.

Each handler turns request messages into :class:`~kfp_pachyderm.local.store.pfs_store.Store`
calls and store rows back into messages. The servicer is
:class:`~kfp_pachyderm.local.pfs_api.service.PfsApi`; the server's ``PFS_METHODS`` lists every
supported RPC with its streaming kind, and the server answers any other method with UNIMPLEMENTED.
"""
