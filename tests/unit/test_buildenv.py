import subprocess
from pathlib import Path

from runner.buildenv import BuildEnv, read_build_env, redact, secret_files


def test_pip_config_env_and_ca(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://user:tok@idx.example/simple\ncert = " + str(tmp_path / "ca.pem") + "\n"
    )
    (tmp_path / "ca.pem").write_bytes(b"CERT")
    env = read_build_env({"PIP_CONFIG_FILE": str(conf), "HTTPS_PROXY": "http://proxy:3128"}, home=tmp_path)
    assert env.buildargs == {"PIP_INDEX_URL": "https://user:tok@idx.example/simple", "HTTPS_PROXY": "http://proxy:3128"}
    assert env.ca_bundle == b"CERT"
    over = read_build_env({"PIP_CONFIG_FILE": str(conf), "PIP_INDEX_URL": "https://other/simple"}, home=tmp_path)
    assert over.buildargs["PIP_INDEX_URL"] == "https://other/simple"


def test_redact_hides_index_credentials() -> None:
    env = BuildEnv(buildargs={"PIP_INDEX_URL": "https://user:tok@idx.example/simple"})
    assert redact("Looking in indexes: https://user:tok@idx.example/simple", env) == "Looking in indexes: ***"


def test_secret_files_are_shell_exports_and_the_ca(tmp_path: Path) -> None:
    value = "https://user:p'a $x@idx.example/simple"
    files = secret_files(BuildEnv(buildargs={"PIP_INDEX_URL": value}, ca_bundle=b"CERT"))
    assert files["runner-ca"] == b"CERT"
    (tmp_path / "env").write_bytes(files["runner-index"])
    out = subprocess.run(
        ["sh", "-c", f'. {tmp_path / "env"}; printf %s "$PIP_INDEX_URL"'], capture_output=True, text=True
    )
    assert out.stdout == value
