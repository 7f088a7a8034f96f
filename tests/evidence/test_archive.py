"""The package's ZIP writer (evidence.package.Archive): members deflated by ISA-L, which every
unzip and the auditor's verifier (the standard zlib) read back byte for byte, with the size and
SHA-256 the manifest will state."""

from __future__ import annotations

import hashlib
import zipfile
import zlib

from isal import isal_zlib

from evidence import package

# Lines like the ledger files': repetitive text with varying identifiers, long enough for
# several of the writer's buffers.
DATA = b"".join(
    b'%d,"arn:aws:ec2:eu-west-1:1234567890%02d:instance/i-%016x",owner,"=1+1"\n'
    % (n, n % 97, n * 2654435761)
    for n in range(60_000)
)


def _written(path, data):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        archive = package.Archive(zf=zf, spool_dir=path.parent)
        with archive.member("findings.csv") as out:
            for start in range(0, len(data), 100_000):
                out.write(data[start : start + 100_000])
    return archive


def _raw_deflate(compressor):
    return compressor.compress(DATA) + compressor.flush()


def test_members_are_deflated_by_isal_and_read_back_with_zlib(tmp_path):
    path = tmp_path / "package.zip"
    archive = _written(path, DATA)

    assert archive.files == [("findings.csv", len(DATA), hashlib.sha256(DATA).hexdigest())]
    with zipfile.ZipFile(path) as zf:
        [info] = zf.infolist()
        assert zf.testzip() is None  # every CRC-32 right
        assert zf.read("findings.csv") == DATA  # inflated by the standard zlib
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.file_size == len(DATA)
        with path.open("rb") as raw:
            raw.seek(info.header_offset)
            local = raw.read(30)
            name_length = int.from_bytes(local[26:28], "little")
            extra_length = int.from_bytes(local[28:30], "little")
            raw.seek(info.header_offset + 30 + name_length + extra_length)
            stored = raw.read(info.compress_size)

    by_isal = _raw_deflate(
        isal_zlib.compressobj(package.DEFLATE_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    )
    by_zlib = _raw_deflate(zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS))
    assert by_isal != by_zlib  # so the comparison below tells which library wrote the member
    assert stored == by_isal
    assert len(stored) < len(DATA) / 4


def test_an_empty_member_is_a_valid_deflated_member(tmp_path):
    path = tmp_path / "package.zip"
    archive = _written(path, b"")

    assert archive.files == [("findings.csv", 0, hashlib.sha256(b"").hexdigest())]
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert zf.read("findings.csv") == b""
