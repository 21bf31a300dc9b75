from runner.deps.model import Lock, PinSource, Requirement
from runner.layers import family_of, split_layers, uv_refusal


def req(name: str, line: str | None = None) -> Requirement:
    return Requirement(name=name, version="1", line=line or f"{name}==1.0", source=PinSource.IMPORT)


def test_heavy_families_get_their_own_layers_in_stacking_order() -> None:
    lock = Lock(
        requirements=(
            req("filelock"),
            req("numpy"),
            req("nvidia-cublas-cu12"),
            req("six"),
            req("torch"),
            req("torchvision"),
            req("triton"),
        ),
        pip_options=("--extra-index-url https://download.pytorch.org/whl/cpu",),
    )
    layers = split_layers(lock)
    assert [f.name for f in layers] == ["1-cuda.txt", "2-torch.txt", "5-arrays.txt"]
    head = "--extra-index-url https://download.pytorch.org/whl/cpu\n"
    assert layers[0].text == head + "nvidia-cublas-cu12==1.0\n"
    assert layers[1].text == head + "torch==1.0\ntorchvision==1.0\ntriton==1.0\n"
    assert "six" not in "".join(f.text for f in layers) and "filelock" not in "".join(f.text for f in layers)


def test_only_exact_pins_go_to_a_family_layer() -> None:
    lock = Lock(requirements=(req("numpy", "numpy>=1.20"), req("torch", "torch @ https://x.example/torch.whl")))
    assert split_layers(lock) == ()  # both left to the last layer, which resolves the whole lock


def test_small_locks_have_no_family_layers() -> None:
    assert split_layers(Lock(requirements=(req("six"), req("attrs")))) == ()
    assert family_of("tensorflow-io-gcs-filesystem") == 2 and family_of("jaxlib") == 3 and family_of("requests") is None


def test_uv_refuses_only_options_it_cannot_honour() -> None:
    assert uv_refusal(("--extra-index-url https://x", "--pre", "--trusted-host x")) == ""
    assert "--prefer-binary" in uv_refusal(("--prefer-binary",))
