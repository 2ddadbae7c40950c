"""The hand-written wire encoding must produce and accept exactly what betterproto does."""

from betterproto.lib.google.protobuf import BytesValue
from hypothesis import given
from hypothesis import strategies as st
from pachyderm_sdk.api import pfs

from kfp_pachyderm.codec.wire import (
    RawAddFile,
    RawDeleteFile,
    add_file_raw_header,
    decode_bytes_value,
    decode_modify_file,
    encode_add_file_raw,
    encode_bytes_value,
    encode_delete_file,
)

paths = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
payloads = st.binary(max_size=5000)


@given(paths, payloads)
def test_add_file_matches_betterproto(path: str, data: bytes):
    expected = bytes(pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=data)))
    assert encode_add_file_raw(path, data) == expected
    decoded = decode_modify_file(expected)
    assert isinstance(decoded, RawAddFile)
    assert (decoded.path, bytes(decoded.data)) == (path, data)


@given(paths, payloads)
def test_add_file_header_is_the_message_before_its_data(path: str, data: bytes):
    assert add_file_raw_header(path, len(data)) + data == encode_add_file_raw(path, data)


@given(paths, paths)
def test_delete_file_matches_betterproto(path: str, datum: str):
    expected = bytes(pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=path)))
    assert encode_delete_file(path) == expected
    with_datum = bytes(pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=path, datum=datum)))
    decoded = decode_modify_file(with_datum)
    assert isinstance(decoded, RawDeleteFile)
    assert (decoded.path, decoded.datum) == (path, datum)


@given(payloads)
def test_bytes_value_matches_betterproto(data: bytes):
    expected = bytes(BytesValue(value=data))
    assert encode_bytes_value(data) == expected
    assert bytes(decode_bytes_value(expected)) == data


def test_other_requests_fall_back_to_betterproto():
    commit = pfs.Commit(repo=pfs.Repo(name="r"), id="0123456789ab4def0123456789abcdef")
    for msg in (
        pfs.ModifyFileRequest(set_commit=commit),
        pfs.ModifyFileRequest(
            add_file=pfs.AddFile(path="/u", url=pfs.AddFileUrlSource(url="s3://b/k"))
        ),
    ):
        assert decode_modify_file(bytes(msg)) == msg


def test_large_payload_is_not_copied_when_decoding():
    data = b"x" * (20 << 20)
    decoded = decode_modify_file(encode_add_file_raw("/big", data))
    assert isinstance(decoded.data, memoryview) and len(decoded.data) == len(data)
