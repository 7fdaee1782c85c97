"""A log stream is masked whatever its chunk boundaries and line lengths."""

from __future__ import annotations

import random

import pytest

from cyclone.server.logs.masking import LineMaskingStream, SecretMasker

SECRET = "straddling-secret-0123456789"
KUBECONFIG = ("apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n"
              "    token: kubeconfig-token-abcdef\n")


def _run(stream: LineMaskingStream, chunks: list[bytes]) -> tuple[bytes, int]:
    out, consumed = b"", 0
    for chunk in chunks:
        masked, used = stream.feed(chunk)
        out, consumed = out + masked, consumed + used
    masked, used = stream.flush()
    return out + masked, consumed + used


@pytest.mark.parametrize("offset", range(-len(SECRET), 2))
def test_a_secret_straddling_the_max_pending_split_is_masked(offset: int) -> None:
    max_pending = 64
    prefix = b"x" * (max_pending + offset)
    data = prefix + SECRET.encode() + b"y" * 200
    stream = LineMaskingStream(SecretMasker([SECRET]), max_pending=max_pending)
    out, consumed = _run(stream, [data[i:i + 16] for i in range(0, len(data), 16)])
    assert SECRET.encode() not in out
    assert out == prefix + b"***" + b"y" * 200
    assert consumed == len(data)


def test_a_secret_straddling_a_64_kib_line_is_masked_with_the_default_limit() -> None:
    line = b"z" * (64 * 1024 - 10) + SECRET.encode() + b"z" * 5000 + b"\n"
    stream = LineMaskingStream(SecretMasker([SECRET]))
    out, consumed = _run(stream, [line[i:i + 4096] for i in range(0, len(line), 4096)])
    assert SECRET.encode() not in out and out.count(b"***") == 1
    assert consumed == len(line)


def test_long_lines_are_released_before_their_newline() -> None:
    stream = LineMaskingStream(SecretMasker([SECRET]), max_pending=100)
    released, _ = stream.feed(b"a" * 1000)
    assert len(released) >= 1000 - len(SECRET)


def test_the_token_of_a_kubeconfig_is_masked_when_printed_alone_across_chunks() -> None:
    stream = LineMaskingStream(SecretMasker([KUBECONFIG]))
    text = b"using kubeconfig-token-abcdef now\n"
    out, _ = _run(stream, [text[:12], text[12:20], text[20:]])
    assert out == b"using *** now\n"


def test_every_line_of_a_printed_multi_line_secret_is_masked() -> None:
    pem = ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
           "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jN\n-----END PRIVATE KEY-----\n")
    stream = LineMaskingStream(SecretMasker([pem]))
    out, _ = _run(stream, [b"key:\n", pem.encode()[:30], pem.encode()[30:]])
    assert b"MIIEvQ" not in out and b"MzEfYy" not in out


def test_random_chunking_never_leaks_a_secret() -> None:
    rng = random.Random(7)
    secrets = [SECRET, "tok-" + "9" * 40, "short-pw"]
    masker = SecretMasker(secrets)
    for _ in range(200):
        parts = []
        for _ in range(rng.randint(1, 12)):
            parts.append(b"n" * rng.randint(0, 90))
            parts.append(rng.choice(secrets).encode())
            if rng.random() < 0.3:
                parts.append(b"\n")
        data = b"".join(parts)
        stream = LineMaskingStream(masker, max_pending=rng.randint(1, 80))
        chunks, i = [], 0
        while i < len(data):
            size = rng.randint(1, 50)
            chunks.append(data[i:i + size])
            i += size
        out, consumed = _run(stream, chunks)
        assert consumed == len(data)
        for secret in secrets:
            assert secret.encode() not in out
        assert out == masker.mask(data)
