"""The `producer` command keeps pyarrow out of its process unless Milvus Lite runs in it."""

import os
import subprocess
import sys

import pytest

PYARROW_LOADED_AFTER_CLI_IMPORT = (
    "import sys\n"
    "from producer.launch import hide_pyarrow_unless_embedded\n"
    "hide_pyarrow_unless_embedded()\n"
    "import producer.cli\n"
    "print(sys.modules.get('pyarrow') is not None)\n"
)


@pytest.mark.parametrize(
    ("uri", "loaded"), [("http://127.0.0.1:19530", "False"), ("/tmp/embedded.db", "True")]
)
def test_pyarrow_is_loaded_only_for_an_embedded_milvus(uri: str, loaded: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PYARROW_LOADED_AFTER_CLI_IMPORT],
        env={**os.environ, "RIS_MILVUS_URI": uri},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == loaded
