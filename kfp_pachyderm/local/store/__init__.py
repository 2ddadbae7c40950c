"""The local Pachyderm server's state: projects, repos, branches, commits and file trees.

Metadata lives in SQLite (WAL journal, one short transaction per change), file contents in a
:class:`~kfp_pachyderm.local.blobs.BlobStore`. Every method is safe to call from many threads:
the database is guarded by one lock, and ``changed`` (a condition on that lock) wakes callers
that wait for a commit to finish.

Semantics follow pachd 2.x for what is supported: global commit IDs (uuid4 hex) shared by the
commits of a commit set; branch provenance that opens a same-ID commit on every downstream branch;
child commits inheriting their parent's files; finished commits being immutable.

The store is :class:`kfp_pachyderm.local.store.pfs_store.Store`.
"""
