"""A path-style S3 gateway for the local Pachyderm server, modelled on pachd's.

A bucket names a branch, or one commit on it, the way pachd's gateway does::

    [<commitID>.][<branch>.]<repo>[.<project>]     e.g. images, dev.images, dev.images.vision,
                                                    0123...cdef.master.images

A bare ``<repo>`` is its master branch in project ``default``; with a project the branch must be
given. Object keys are file paths in the commit (``a/b.txt`` is ``/a/b.txt``). A PUT or DELETE
addressed to a branch whose head is finished makes one commit of its own; one addressed to an
open commit (the branch head, or a bucket naming it) goes into that commit; one addressed to a
finished commit fails. The version ID of an object is its commit ID and its ETag is the BLAKE3
of its content (the SHA-256 for one written before the store hashed with BLAKE3), or S3's
``"<md5>-<parts>"`` form for one completed from a multipart upload.

Requests are authenticated with AWS Signature V4 (Authorization header, presigned query, and
aws-chunked streaming bodies) or V2. When the server has a Pachyderm token, the access key id and
the secret must both be that token; without one any access key id is accepted, but the request
must be signed with the access key id as its secret (as pachd does with auth off), and unsigned
requests are accepted. Bodies stream into the blob store and are
checked against every digest the request declares; nothing holds a whole object in memory.

Multipart uploads in progress are kept in the store and survive a restart; completing one
writes no byte again (:mod:`kfp_pachyderm.local.s3.multipart`). The server is
:class:`kfp_pachyderm.local.s3.gateway.S3Gateway`.
"""
