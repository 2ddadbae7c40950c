"""S3 error responses: the exception operations raise, and the HTTP status of each code.

Store errors map onto the S3 code a client of a bucket would expect (a missing repo or branch is
NoSuchBucket, and so on).
"""

from __future__ import annotations

STATUS = {
    "AccessDenied": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "BadDigest": 400,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "EntityTooSmall": 400,
    "IncompleteBody": 400,
    "InternalError": 500,
    "InvalidAccessKeyId": 403,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "InvalidBucketState": 409,
    "InvalidDigest": 400,
    "InvalidFilePath": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidRange": 416,
    "InvalidRequest": 400,
    "MalformedXML": 400,
    "MissingContentLength": 411,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "NoSuchVersion": 404,
    "NotImplemented": 501,
    "PreconditionFailed": 412,
    "RequestTimeTooSkewed": 403,
    "SignatureDoesNotMatch": 403,
    "XAmzContentSHA256Mismatch": 400,
}
STORE_ERRORS = {
    "NOT_FOUND": "NoSuchBucket",
    "ALREADY_EXISTS": "BucketAlreadyOwnedByYou",
    "INVALID_ARGUMENT": "InvalidArgument",
    "FAILED_PRECONDITION": "InvalidBucketState",
}


class S3Error(Exception):
    """An S3 error response: ``code`` is the S3 error code, which fixes the HTTP status."""

    def __init__(self, code: str, message: str, **details: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = STATUS[code]
        self.details = details
