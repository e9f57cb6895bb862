"""The sandbox's parts on their own: the data channel, the rule tracer, bubblewrap.

The whole grader (kernel, worker, tests outside the kernel) is tested in test_grade.py.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.factories import ROOT
from utils.instructor.sandbox import isolation, protocol
from utils.instructor.sandbox.remote import (
    CallTimeout,
    KernelDied,
    RemoteFunction,
    free_names,
    is_definitions,
    setup_imports,
)
from utils.instructor.sandbox.remote import FunctionServer as RemoteFunctionServer


def roundtrip(value):
    return protocol.decode(protocol.encode({"v": value}))["v"]


def test_the_channel_carries_data_and_keeps_identity():
    a = np.arange(6.0).reshape(2, 3)
    msg = {
        "args": [a, [a, (a, 3)], {"k": torch.ones(2, dtype=torch.float64)}],
        "value": (a, float("nan"), 2**70, 1 + 2j, np.float32(3.5), "s", None, True, -0.0),
    }
    got = protocol.decode(protocol.encode(msg))
    assert got["value"][0] is got["args"][0] is got["args"][1][0]  # one object, three places
    np.testing.assert_array_equal(got["args"][0], a)
    assert (
        isinstance(got["args"][2]["k"], torch.Tensor) and got["args"][2]["k"].dtype == torch.float64
    )
    v = got["value"]
    assert np.isnan(v[1]) and v[2] == 2**70 and v[3] == 1 + 2j and v[4] == np.float32(3.5)
    assert v[5:8] == ("s", None, True) and str(v[8]) == "-0.0"
    assert protocol.decode(protocol.encode({"v": a}), tensors=False)["v"].flags.writeable
    assert roundtrip(np.zeros((0, 3), dtype=np.int64)).shape == (0, 3)


@pytest.mark.parametrize(
    "bad",
    [object(), lambda: 1, np.array(["text"]), np.array([object()]), {1.5: 2}, {(1, 2): 3}, 1j * np.ones(1, dtype=np.clongdouble)],
)  # fmt: skip
def test_the_channel_refuses_what_is_not_data(bad):
    with pytest.raises(protocol.ChannelError):
        protocol.encode({"v": bad})


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage" * 10,
        b"WBDC1" + b"\0" * 16,
        protocol.encode({"v": np.ones(3)})[:-5],  # truncated
        protocol.encode({"v": 1}).replace(b'"v": 1', b'"v": {"X": 1}'),  # unknown tag
        protocol.encode({"v": np.ones(3)}).replace(b"float64", b"object\0"),  # dtype not allowed
        protocol.encode({"v": [1]}).replace(b'{"L": [1]}', b'{"R": "nowhere"}'),
    ],
)
def test_the_grader_refuses_malformed_replies(data):
    with pytest.raises(protocol.ChannelError):
        protocol.decode(data)


def test_the_channel_has_a_size_limit():
    with pytest.raises(protocol.ChannelError, match="MiB"):
        protocol.encode({"v": np.zeros(2**20)}, limit=2**20)
    with pytest.raises(protocol.ChannelError, match="MiB"):
        protocol.decode(protocol.encode({"v": np.zeros(2**20)}), limit=2**20)


def test_sync_back_changes_the_callers_arguments_as_a_local_call_would():
    x, keep = np.zeros(3), np.ones(2)
    caches = [(keep, 1), (np.ones(2), 2)]
    returned = roundtrip([np.full(3, 7.0), [(np.ones(2), 1), (np.full(2, 5.0), 2)]])
    pairs = {}
    assert protocol.sync_back(x, returned[0], pairs) is x and x.tolist() == [7, 7, 7]
    out = protocol.sync_back(caches, returned[1], pairs)
    assert out is caches and caches[0][0] is keep and caches[1][0].tolist() == [5, 5]
    grown = roundtrip([1, 2, 3])
    lst = [1, 2]
    assert protocol.sync_back(lst, grown) is lst and lst == [1, 2, 3]
    d = {"a": np.zeros(1)}
    assert protocol.sync_back(d, roundtrip({"a": np.ones(1), "b": 2})) is d and set(d) == {"a", "b"}


def _server(tmp_path, sources, forbid=("torch", "utils.checks"), isolate=None):
    from utils.instructor.sandbox import worker

    isolate = isolation.available()[0] if isolate is None else isolate
    home = tmp_path / "fn"
    home.mkdir(exist_ok=True)
    isolation.own_by_sandbox_user(home)
    limits = worker.Limits(memory_mb=1024)
    argv, env = worker._sandbox_command(
        "functions", [], home=home, exports=tmp_path, limits=limits, isolate=isolate,
        forbid=list(forbid),
    )  # fmt: skip
    setup = "import numpy as np\nimport torch\nfrom utils.checks import rel_error"
    server = RemoteFunctionServer(
        argv, env or None, home, setup, list(enumerate(sources)), tmp_path / "log"
    )
    server.advance(len(sources))
    return server


def test_the_function_server_calls_the_students_code_and_keeps_identity(tmp_path):
    source = "def f(a, b):\n    a += 1  # in place, as a student might\n    return a, b"
    server = _server(tmp_path, [source])
    try:
        x, y = np.zeros(2), np.ones(2)
        out = RemoteFunction(server, "f", ["a", "b"])(x, y)
        assert out[0] is x and out[1] is y and x.tolist() == [1, 1]
    finally:
        server.close()


@pytest.mark.skipif(not isolation.available()[0], reason="no bubblewrap here")
def test_forbidden_modules_are_not_there_for_the_students_functions(tmp_path):
    sources = [
        "def sneaky(x):\n    t = __import__('to' + 'rch')\n    return t.tanh(t.from_numpy(x)).numpy()",
        "def by_path(x):\n    import os, sys\n"
        "    return [p for p in sys.path if os.path.exists(os.path.join(p, 'torch', '__init__.py'))]",
        "def checks(x):\n    import utils.checks.core as c\n    return c.rel_error(x, x)",
        "def fine(x):\n    return np.tanh(x)",
    ]
    server = _server(tmp_path, sources)
    try:
        x = np.linspace(-1, 1, 3)
        with pytest.raises(ModuleNotFoundError, match="may not use torch"):
            RemoteFunction(server, "sneaky", ["x"])(x)
        assert RemoteFunction(server, "by_path", ["x"])(x) == []  # no torch on disk at all
        with pytest.raises(ModuleNotFoundError, match="may not use utils.checks"):
            RemoteFunction(server, "checks", ["x"])(x)
        np.testing.assert_allclose(RemoteFunction(server, "fine", ["x"])(x), np.tanh(x))
    finally:
        server.close()


def test_a_forbidden_course_module_is_hidden_alone_not_all_of_utils(tmp_path):
    # Lab 5 forbids Chapter 7's attention module (its exercises are that code) and
    # nothing else of utils: the rest of utils.models must stay importable.
    from utils.env import ROOT
    from utils.instructor.sandbox.commands import forbidden_dirs

    hidden = forbidden_dirs(["utils.models.attention", "utils.checks"])
    assert ROOT / "utils" / "models" / "attention.py" in hidden
    assert ROOT / "utils" / "checks" in hidden and ROOT / "utils" not in hidden
    assert ROOT / "utils" / "models" not in hidden
    sources = [
        "def chapter7(x):\n    from utils.models.attention import masked_softmax\n    return x",
        "def by_file(x):\n    import utils.models as m, os\n"
        "    path = os.path.join(os.path.dirname(m.__file__), 'attention.py')\n"
        "    return open(path).read()[:10]",
        "def chapter5(x):\n    from utils.models.masking import length_mask\n"
        "    return length_mask(torch.tensor([x]), 2).tolist()",
    ]
    tmp_path.chmod(0o711)  # as the grader's folders: torch's import needs a usable tempdir
    server = _server(tmp_path, sources, forbid=("utils.models.attention", "utils.checks"))
    try:
        with pytest.raises(ModuleNotFoundError, match="may not use utils.models.attention"):
            RemoteFunction(server, "chapter7", ["x"])(1)
        with pytest.raises(PermissionError, match="does not allow"):
            RemoteFunction(server, "by_file", ["x"])(1)
        assert RemoteFunction(server, "chapter5", ["x"])(1) == [[True, False]]
    finally:
        server.close()


def test_a_function_that_loops_or_crashes_costs_its_test_only(tmp_path):
    import time

    sources = [
        "def loop():\n    while True:\n        pass",
        "def crash():\n    import os\n    os._exit(3)",
        "def one():\n    return 1",
    ]
    server = _server(tmp_path, sources)
    try:
        server.deadline = time.monotonic() + 2
        with pytest.raises(CallTimeout):
            RemoteFunction(server, "loop", [])()
        server.deadline = time.monotonic() + 30
        assert RemoteFunction(server, "one", [])() == 1  # started again, loaded again
        with pytest.raises(KernelDied):
            RemoteFunction(server, "crash", [])()
        assert RemoteFunction(server, "one", [])() == 1 and server.starts == 3
    finally:
        server.close()


def test_loading_a_cell_the_kernel_interrupted_gets_its_time_once_more_not_ten_times():
    from utils.instructor.sandbox.limits import Limits
    from utils.instructor.sandbox.worker import load_budget

    limits = Limits(cell_timeout=10, cell_factor=10)
    seconds = {2: 3.0, 3: 10.1, 5: 0.5}  # cell 3 looped until the kernel interrupted it
    assert load_budget(limits, seconds, set(), range(0, 3)) == 30.0  # 10 x 3.0 s
    assert load_budget(limits, seconds, {3}, range(0, 6)) == 35.0 + 10.1
    assert load_budget(limits, seconds, {3}, range(3, 4)) == 10.0 + 10.1  # never < the limit
    assert load_budget(limits, seconds, set(), range(3, 4)) == 101.0  # slow, not stopped


def test_tests_read_only_the_setup_imports_and_their_own_names():
    setup = "%matplotlib inline\nimport numpy as np\nx = 1\nfrom utils.checks import rel_error"
    assert setup_imports(setup) == "import numpy as np\nfrom utils.checks import rel_error"
    assert free_names("a = f(b)\nfor i in range(3):\n    g(i, a)") == {"f", "b", "range", "g"}
    assert is_definitions('import numpy as np\nK = 3\n\n\ndef f(x):\n    """doc"""\n    return x')
    assert not is_definitions("def f(x):\n    return x\n\n\nprint(f(1))")
    assert not is_definitions("W = np.zeros(3)")


PROBE = """\
import json, os, socket
out = {p: os.path.exists(p) for p in PATHS}
try:
    open(PWNED, "w")
    out["write utils"] = True
except OSError:
    out["write utils"] = False
try:
    socket.create_connection(("1.1.1.1", 53), 2)
    out["net"] = True
except OSError:
    out["net"] = False
open("mine.txt", "w").write("ok")
out["uid"] = os.getuid()
print(json.dumps(out))
"""


@pytest.mark.skipif(not isolation.available()[0], reason="no bubblewrap here")
def test_bubblewrap_shows_only_what_a_student_has(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    isolation.own_by_sandbox_user(home)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.txt").write_text("another copy of the workbook")
    paths = [str(ROOT / "solutions"), str(ROOT / "tests"), str(ROOT / ".git"),
             str(ROOT / "utils" / "checks"), str(ROOT / "utils" / "instructor" / "grade.py"),
             str(tmp_path / "elsewhere" / "secret.txt")]  # fmt: skip
    probe = PROBE.replace("PATHS", repr(paths)).replace(
        "PWNED", repr(str(ROOT / "utils" / "pwned.py"))
    )
    cmd = isolation.bwrap_command(
        [sys.executable, "-c", probe],
        read_only=[ROOT / "utils"],
        writable=[home],
        hidden=[ROOT / "utils" / "instructor"],
        cwd=home,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
    )
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    import json

    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen[str(ROOT / "utils" / "checks")] is True
    for p in ("solutions", "tests", ".git"):
        assert seen[str(ROOT / p)] is False, p
    assert seen[str(ROOT / "utils" / "instructor" / "grade.py")] is False
    assert seen[str(tmp_path / "elsewhere" / "secret.txt")] is False  # the rest of the machine
    assert seen["write utils"] is False and seen["net"] is False
    assert (home / "mine.txt").read_text() == "ok" and not (ROOT / "utils" / "pwned.py").exists()
    import os

    assert seen["uid"] != 0 or os.geteuid() != 0


def test_a_small_reply_cannot_stand_for_a_huge_value():
    a: list = []
    for _ in range(60):  # 2**60 paths through 60 lists
        a = [a, a]
    data = protocol.encode({"value": a})
    assert len(data) < 10_000
    with pytest.raises(protocol.ChannelError, match="refers to itself"):
        protocol.decode(data)
    b: list = []
    for _ in range(8):
        b = [b, b]
    value = protocol.decode(protocol.encode({"value": b}))["value"]
    assert protocol.rebind(value, {}) is value and value[0] is value[1]


def test_the_structure_of_a_message_is_capped(monkeypatch):
    monkeypatch.setattr(protocol, "MAX_HEADER", 1000)
    with pytest.raises(protocol.ChannelError, match="structure"):
        protocol.encode({"value": [[]] * 500})
    data = bytearray(protocol.encode({"value": 1}))
    data[5:13] = (10**6).to_bytes(8, "little")  # a header said to be 1 MB long
    with pytest.raises(protocol.ChannelError, match="structure"):
        protocol.decode(bytes(data))


def test_the_server_loads_cells_as_the_notebook_ran_them():
    from utils.instructor.sandbox.functions import load, python_of

    assert python_of("%%bash\nls") is None
    assert python_of("%%time\nx = 1").strip() == "x = 1"
    ns: dict = {"__builtins__": __builtins__}
    failed = load(
        ns,
        "%matplotlib inline\nimport numpy as np\nimport not_a_module_here",
        [
            "%%time\ndef f(x):\n    return np.tanh(x)\n%timeit f(1)",  # magics: dropped
            "import not_a_module_here\n\n\ndef g():\n    return 2",  # an import the server lacks
            "print(history)\nH = 3\n\n\ndef h():\n    return H",  # a name from another cell
            "raise ValueError('no')\n\n\ndef never():\n    return 0",  # a real error stops the cell
        ],
    )
    assert ns["f"](0.0) == 0.0 and ns["g"]() == 2 and ns["h"]() == 3 and "never" not in ns
    assert len(failed) == 3 and "ValueError: no" in failed[-1]


def test_the_function_server_opens_no_socket(tmp_path):
    source = "def connect():\n    import socket\n    return socket.socket(socket.AF_UNIX).fileno()"
    server = _server(tmp_path, [source])
    try:
        with pytest.raises(PermissionError, match="no sockets"):
            RemoteFunction(server, "connect", [])()
    finally:
        server.close()
